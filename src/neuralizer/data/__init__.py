"""neuralizer.data"""

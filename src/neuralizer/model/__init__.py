"""neuralizer.model"""

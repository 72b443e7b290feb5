"""neuralizer.infer"""

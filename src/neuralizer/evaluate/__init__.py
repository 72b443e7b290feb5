"""neuralizer.evaluate"""

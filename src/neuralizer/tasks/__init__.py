"""neuralizer.tasks"""

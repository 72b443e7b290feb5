"""neuralizer.train"""

from modules.example.classifier import ExampleClassifier

__all__ = ["ExampleClassifier"]

__version__ = "3.14.0.dev0"

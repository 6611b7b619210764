"""trainforge: run Amazon SageMaker training jobs on your own machines, exactly as SageMaker
runs them."""

__version__ = "0.1.0"

"""Plumbing shared by the course notebooks: profiles, data, grading, generation, results, plots.

The lines a learner must see (BitsAndBytesConfig, LoraConfig, SFTConfig, SFTTrainer, the prompt
format, the metric) are written out in the notebooks; this package holds what several notebooks
share, unit-tested.
"""

__version__ = "0.1.0"

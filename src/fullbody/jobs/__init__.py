"""One module per command, each with ``run(cfg)``: what ``train.py``, ``eval.py``, ``demo.py``,
``export.py``, ``pseudo_label.py`` and ``hand_crops.py`` do on their composed Hydra config.

The top room: a job may import every other room, and nothing in the package imports a job.
The root scripts are only Hydra's entry (``@hydra.main``) and the one user-error wrapper
(:func:`fullbody.utils.cli.user_errors`) around ``run``; tests call ``run`` directly.
"""

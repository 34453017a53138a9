"""The lab's widgets: the settings form (generated from TrainConfig's metadata), the controls, the
lines of words (status, notice, doctor, log), the curves, the validation figures, inside the
network, and a comparison. Each draws what the lab screen hands it (figures from `tui/live`,
settings from `engine/config.py`); none reaches into the engine's trainer. `views.py` holds the
plain drawing functions they share."""

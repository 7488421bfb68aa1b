"""The pretrained-checkpoint catalogue (TOML files), shipped as package data."""

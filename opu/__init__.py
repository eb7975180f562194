"""opu: a faithful simulation of LightOn's Optical Processing Unit."""

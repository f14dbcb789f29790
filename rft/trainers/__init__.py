"""Trainers: paper 003's SFT stages on TRL's SFTTrainer (`rft.trainers.sft`)."""

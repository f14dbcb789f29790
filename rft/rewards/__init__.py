"""Reward functions as pure functions (`rft_fas`: paper 001, `dt_grpo`: paper 003) and their TRL adapters (`trl`)."""

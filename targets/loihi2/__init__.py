"""Loihi 2: a spec only; its family is `loihi`, whose hooks it uses."""

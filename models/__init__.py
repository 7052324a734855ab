"""Model zoo: builders that write neurocomp .pt files."""

"""Human-facing outputs of a compile or run: energy model, terminal tables, HTML report."""

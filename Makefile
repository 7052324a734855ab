# The two set-up commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_MODEL := build/models/digits_snn.pt

.PHONY: install test test-all test-browser demo demo-digits models siamsnn native-tracker digits-cnn clean

install: $(STAMP)

# torch is pinned to the CPU build first (a looser pin pulls a multi-GB CUDA build).
# norse + nirtorch (the NIR cross-check test) go in with --no-deps: norse would pull torchvision, which drags a CUDA torch.
# So do the other NIR frameworks of tests/test_nir_interop.py (snnTorch, Sinabs, Rockpool, SpikingJelly; ~5 s):
# spikingjelly declares torchvision/torchaudio, sinabs and rockpool nir<=1.0.4 and samna, none needed by their NIR
# paths; the pure-Python imports they do need are the `interop` extra.
# lava-nc 0.10.0 declares Python <3.11; it is installed without its metadata checks and made
# importable on 3.11 by neurocomp/backends/lava_compat.py at import time (see README).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,lava,interop,cluster]'
	$(PY) -m pip install -q --no-deps norse==1.1.0 nirtorch==2.6 snntorch==1.0.0 sinabs==3.1.3 rockpool==3.1.0 \
		spikingjelly==2.0.0
	$(PY) -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0
	@if ! command -v $(CHROMIUM) >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(CHROMIUM) >/dev/null || echo "could not install $(CHROMIUM)"; fi
	touch $(STAMP)

# Lava forks its own worker processes; its tests run in one process after the parallel run,
# where a fork never happens inside an xdist worker's threads.
# The browser tests render the HTML pages in Debian's headless Chromium and fail without it. `make install`
# installs it where it can (root with apt-get); elsewhere these targets say in one line that the browser tests
# did not run and how to install Chromium; `make test-browser` always runs them.
CHROMIUM := chromium
BROWSER_TESTS = if command -v $(CHROMIUM) >/dev/null 2>&1; then $(PY) -m pytest -q -m "browser and not slow"; \
	else echo "browser tests did not run: $(CHROMIUM) is not installed (sudo apt-get install $(CHROMIUM); then make test-browser)"; fi

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow and not lava and not browser"
	$(PY) -m pytest -q -m "lava and not slow"
	@$(BROWSER_TESTS)

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not lava and not browser"
	$(PY) -m pytest -q -m lava
	@$(BROWSER_TESTS)

test-browser: $(STAMP)
	$(PY) -m pytest -q -m browser

$(DEMO_MODEL): $(STAMP) models/digits.py
	$(PY) -m neurocomp.models.digits -o $(DEMO_MODEL)

models: $(DEMO_MODEL)

# The core-native SiamSNN for one TrueNorth chip (micro3g, models/train_siamsnn.py; weights and graphs committed in
# models/): compile for TrueNorth, bind the exemplar, track one synthetic clip on the emulated chip.
demo: $(STAMP)
	$(PY) examples/track.py 0 --frames 12

demo-digits: $(DEMO_MODEL)
	$(PY) examples/demo.py $(DEMO_MODEL)

# Rebuild the committed models/siamsnn.pt (deterministic) and its Loihi twin (reset to zero).
# Retraining the weights: python -m neurocomp.models.train_siamfc --config micro -o models/siamfc_micro.pt
siamsnn: $(STAMP)
	mkdir -p build/models
	$(PY) -m neurocomp.models.siamsnn models/siamfc_micro.pt -o models/siamsnn.pt
	$(PY) -m neurocomp.models.siamsnn models/siamfc_micro.pt --reset zero -o build/models/siamsnn_loihi.pt

# Retrain the core-native tracker from scratch into build/models (deterministic: the same bytes as the
# committed models/siamfc_<config>_native.pt and models/siamsnn_<config>_*; about 10 minutes on 2 cores).
# micro3g is the one-chip tracker `make demo` runs.
native-tracker: $(STAMP)
	$(PY) -m neurocomp.models.train_siamsnn --config micro3g --out-dir build/models
	$(PY) -m neurocomp.models.train_siamsnn --config micro3 --out-dir build/models
	$(PY) -m neurocomp.models.train_siamsnn --config micro --out-dir build/models
	$(PY) -m neurocomp.models.train_siamsnn --config mini --out-dir build/models

# Retrain the core-native digits CNNs into build/models (deterministic: the same bytes as the committed
# models/digits_cnn_<target>.pt and .json; about a minute on 2 cores).
digits-cnn: $(STAMP)
	$(PY) -m neurocomp.models.train_digits_cnn --out-dir build/models

clean:
	rm -rf build

"""SiamSNN: hybrid response by hand, graph heads, and a track on the emulated chip."""
import numpy as np
import pytest
import torch

from neurocomp.models.siamsnn import (EMBEDDING, GATES, SCORE, SCORE_SPIKES, hybrid_response, siamsnn_record,
                                      tracker_config, with_kernel)


def test_hybrid_response_by_hand():
    u = np.array([1.0, 3.0, 6.0, 10.0]).reshape(1, 4, 1)  # increments c_t = 1, 2, 3, 4
    assert hybrid_response(u, tau0=2, weighting="drop")[0, 0] == pytest.approx(3.5)
    assert hybrid_response(u, tau0=0, weighting="linear")[0, 0] == pytest.approx(30 / 10)
    assert hybrid_response(u, tau0=0, weighting="uniform")[0, 0] == pytest.approx(2.5)
    with pytest.raises(ValueError):
        hybrid_response(u, 0, "median")

"""Training for the target (DESIGN.md §4b): QAT with QCFS activations and the target's weight sets
(`qat`), and a chip-in-the-loop fine-tune through a differentiable surrogate of the compiled program (`surrogate`).

    deploy = deploy_for(load_target("truenorth"))            # weight mode: the target's default
    net = from_module(model.eval(), (1, 8, 8), deploy, timesteps=16)
    fit(net, x, y, TrainOptions(timesteps=16, epochs=20))
    graph = to_graph(net)                                    # integer SNN Graph: compile it, it is exact
"""
from neurocomp.train.deploy import Deploy, deploy_for
from neurocomp.train.qat import QATNet, TrainOptions, exactness, fit, from_module, from_program, predict, to_graph, training_info
from neurocomp.train.qcfs import qcfs
from neurocomp.train.surrogate import Surrogate, chip_logits, finetune

__all__ = ["Deploy", "deploy_for", "QATNet", "TrainOptions", "exactness", "fit", "from_module", "from_program", "predict",
           "to_graph", "training_info", "qcfs", "Surrogate", "chip_logits", "finetune"]

"""Expert models of TAR-FAS (paper 003, section 3.1.2 "Expert-Model-Guided Mechanism", Appendix A.3): one
small CNN per visual tool except ZoomInTool, trained on that tool's output picture alone to predict the
probability of spoof traces, p_k = E_k(T_k(I)) (Eq. 6). The annotation pipeline (rft.annotate) turns p_k into
the guidance sentence of Eq. 5.

    rft experts train --data data/synthetic --out models/experts
    bank = ExpertBank.load("models/experts"); bank.spoof_probability("FFTTool", picture)
"""

from rft.experts.bank import Expert, ExpertBank, load_expert, save_expert
from rft.experts.evaluation import TARGET_ATTACKS, acceptance, expert_report
from rft.experts.inputs import EXPERT_TOOLS, expert_input, random_arguments, tool_picture
from rft.experts.model import ExpertArchitecture, ExpertCNN
from rft.experts.training import TrainingSettings, predict_probabilities, train_expert

__all__ = [
    "EXPERT_TOOLS",
    "TARGET_ATTACKS",
    "Expert",
    "ExpertArchitecture",
    "ExpertBank",
    "ExpertCNN",
    "TrainingSettings",
    "acceptance",
    "expert_input",
    "expert_report",
    "load_expert",
    "predict_probabilities",
    "random_arguments",
    "save_expert",
    "tool_picture",
    "train_expert",
]

"""Dataset construction of TAR-FAS (paper 003, section 3.1) and paper 002's captions.

A teacher (any OpenAI-compatible chat endpoint, or the templated writer) annotates each image: the stage-1
fast answer `<CLS><reason>...</reason>` (knowledge transfer, I-FAS format), a multi-turn tool trajectory
guided by the expert models (rft.experts), vanilla and six-stage reasoning captions. Each annotation is
verified (correctness, format, no leak of the hint or an expert confidence), re-annotated once on failure and
then dropped with its reason. Results are journaled per image, so runs resume, and written as
`rft.data.conversations` datasets, one per task.

    rft annotate --data data/synthetic --experts models/experts --out data/annotated --templated
"""

from rft.annotate.annotation import (
    CAPTION_REASONING,
    CAPTION_VANILLA,
    KNOWLEDGE_TRANSFER,
    TASKS,
    TOOL_TRAJECTORY,
    AnnotationSettings,
    annotate_task,
    trajectory_messages,
)
from rft.annotate.pipeline import Runner, RunSettings
from rft.annotate.teacher import HttpTeacher, TeacherFailure, TeacherFatal, TeacherSettings
from rft.annotate.templated import TemplatedTeacher
from rft.annotate.verify import Reason

__all__ = [
    "CAPTION_REASONING",
    "CAPTION_VANILLA",
    "KNOWLEDGE_TRANSFER",
    "TASKS",
    "TOOL_TRAJECTORY",
    "AnnotationSettings",
    "HttpTeacher",
    "Reason",
    "RunSettings",
    "Runner",
    "TeacherFailure",
    "TeacherFatal",
    "TeacherSettings",
    "TemplatedTeacher",
    "annotate_task",
    "trajectory_messages",
]

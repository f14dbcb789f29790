"""`rft annotate`: build the SFT data of paper 003 (stage 1 knowledge transfer, stage 2 tool trajectories)
and paper 002's captions, with an OpenAI-compatible teacher or the templated writer.

    rft annotate --data data/synthetic --experts models/experts --out data/annotated --templated
    OPENAI_API_KEY=... rft annotate --data data/synthetic --experts models/experts --out data/annotated \\
        --teacher-url https://host/v1 --teacher-model gemini-2.5-pro --max-in-flight 8 --requests-per-minute 120
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from rft.annotate.annotation import TASKS, AnnotationSettings
from rft.annotate.build import format_summary
from rft.annotate.pipeline import Runner, RunSettings
from rft.annotate.store import StoreError
from rft.annotate.teacher import HttpTeacher, TeacherFatal, TeacherSettings
from rft.annotate.templated import TemplatedTeacher
from rft.experts.bank import ExpertBank
from rft.outputs import OutputDirError
from rft.tools.toolsets import tool_set_from_text


def build_parser() -> argparse.ArgumentParser:
    defaults, teacher_defaults = AnnotationSettings(), TeacherSettings(base_url="http://x", model="x")
    parser = argparse.ArgumentParser(
        prog="rft annotate",
        description=(
            "Tool-augmented annotation of TAR-FAS (paper 003, sec. 3.1): the stage-1 fast answers, the stage-2\n"
            "tool trajectories (teacher turns guided by the expert models, verified, re-annotated once, then\n"
            "dropped with a reason), and paper 002's vanilla and reasoning captions. Resumable: a rerun with the\n"
            "same --out continues where the last one stopped. Writes OUT/<task>/ datasets and OUT/summary.json."
        ),
        epilog=(
            "examples:\n"
            "  rft annotate --data data/synthetic --experts models/experts --out data/annotated --templated\n"
            "  OPENAI_API_KEY=... rft annotate --data data/synthetic --experts models/experts \\\n"
            "      --out data/annotated --teacher-url https://host/v1 --teacher-model gemini-2.5-pro\n\n"
            "Stage 1 SFT reads OUT/knowledge_transfer, stage 2 OUT/tool_trajectory. See docs/DATASET_CONSTRUCTION.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (rft.data.schema layout)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (journal, datasets, summary): new, or an earlier run's",
    )
    parser.add_argument(
        "--experts", type=Path, help="experts folder from `rft experts train` (guidance, Eq. 5)"
    )
    parser.add_argument(
        "--split", default="train", help="split to annotate; 'all' for every split (default: train)"
    )
    parser.add_argument("--domains", nargs="+", help="only these domains")
    parser.add_argument("--limit", type=int, help="at most this many images")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="default: all four")
    writer = parser.add_mutually_exclusive_group(required=True)
    writer.add_argument("--templated", action="store_true", help="the deterministic teacher-free writer")
    parser.add_argument(
        "--tools",
        default="all",
        help="with --templated: the tool set stage-2 trajectories may call (a set name such as zoom_in or "
        "zoom_in+texture, or comma-separated tool names; run.tools)",
    )
    writer.add_argument("--teacher-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(
        "--teacher-model", help="model name sent to the teacher (required with --teacher-url)"
    )
    parser.add_argument(
        "--api-key-env",
        default=teacher_defaults.api_key_env,
        help="env variable with the API key (default: %(default)s)",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=teacher_defaults.max_in_flight, help="default: %(default)s"
    )
    parser.add_argument(
        "--requests-per-minute",
        type=float,
        default=teacher_defaults.requests_per_minute,
        help="0 for no limit (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=teacher_defaults.timeout_s, help="seconds per request"
    )
    parser.add_argument(
        "--http-retries",
        type=int,
        default=teacher_defaults.http_retries,
        help="retries of a request after 429/5xx/connection errors (default: %(default)s)",
    )
    parser.add_argument("--temperature", type=float, default=teacher_defaults.temperature)
    parser.add_argument("--max-tokens", type=int, default=teacher_defaults.max_tokens)
    parser.add_argument("--send-tool-schemas", action="store_true", help="also pass OpenAI `tools`")
    parser.add_argument(
        "--max-turns", type=int, default=defaults.max_turns, help="L_max (default: %(default)s)"
    )
    parser.add_argument(
        "--max-tool-calls", type=int, default=defaults.max_tool_calls, help="default: %(default)s"
    )
    parser.add_argument(
        "--min-tool-calls", type=int, default=defaults.min_tool_calls, help="default: %(default)s"
    )
    parser.add_argument(
        "--reannotations", type=int, default=defaults.reannotations, help="default: %(default)s"
    )
    parser.add_argument("--retry-dropped", action="store_true", help="annotate earlier drops again")
    parser.add_argument("--restart", action="store_true", help="discard the journal in OUT and start over")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def make_teacher(args, annotation: AnnotationSettings):
    if args.templated:
        return TemplatedTeacher(
            max_tool_calls=annotation.max_tool_calls,
            min_tool_calls=annotation.min_tool_calls,
            tools=tool_set_from_text(args.tools),
        )
    if not args.teacher_model:
        raise ValueError("--teacher-model is required with --teacher-url")
    settings = TeacherSettings(
        base_url=args.teacher_url,
        model=args.teacher_model,
        api_key_env=args.api_key_env or None,
        timeout_s=args.timeout,
        http_retries=args.http_retries,
        max_in_flight=args.max_in_flight,
        requests_per_minute=args.requests_per_minute or None,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        send_tool_schemas=args.send_tool_schemas,
    )
    return HttpTeacher(settings)


def _validation_message(error: ValidationError) -> str:
    detail = error.errors()[0]
    where = ".".join(str(part) for part in detail["loc"]) or "settings"
    return f"{where}: {detail['msg'].removeprefix('Value error, ')}"


async def _run(args) -> int:
    annotation = AnnotationSettings(
        max_turns=args.max_turns,
        max_tool_calls=args.max_tool_calls,
        min_tool_calls=args.min_tool_calls,
        reannotations=args.reannotations,
    )
    settings = RunSettings(
        data=args.data,
        out=args.out,
        split=None if args.split == "all" else args.split,
        domains=tuple(args.domains) if args.domains else None,
        limit=args.limit,
        tasks=tuple(args.tasks),
        workers=1 if args.templated else args.max_in_flight,
        restart=args.restart,
        retry_dropped=args.retry_dropped,
        annotation=annotation,
    )
    experts = ExpertBank.load(args.experts) if args.experts else None
    teacher = make_teacher(args, annotation)
    result = await Runner(settings, teacher, experts, progress=not args.quiet).run()
    print(format_summary(result.summary))
    print(
        f"{result.new_records} new records, {result.requests} teacher requests, {result.seconds:.0f} s; "
        f"datasets and summary.json in {args.out}"
    )
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ValidationError as error:
        print(f"rft annotate: error: {_validation_message(error)}", file=sys.stderr)
    except OutputDirError as error:
        print(f"rft annotate: error: --out {error}", file=sys.stderr)
    except (ValueError, FileNotFoundError, StoreError, TeacherFatal) as error:
        print(f"rft annotate: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("rft annotate: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

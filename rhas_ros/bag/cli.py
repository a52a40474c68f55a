"""rhas_bag: run rhas_node's pipeline over a recorded bag, every sampled frame, into a new bag.

  rhas_bag INPUT_BAG --output OUTPUT_BAG [--params-file FILE] [-p NAME:=VALUE ...]
           [--text "referring text"] [--start S] [--duration S] [--storage mcap|sqlite3]
           [--debug-images] [--overwrite]

The parameters are rhas_node's (config/rhas.yaml; a params file for rhas_node works as is) and
are read and checked as the node reads them. The output holds what the node would publish for
these frames — action_segments, tracked_persons, detections, action_labels (and
rhas_node/debug_image with --debug-images) — with the node's headers, each message logged at
the recorded time of the frame or text that caused it; every segment still open at the end of
the bag is closed FINAL. The same bag and parameters give the same messages. Ctrl-C (or
SIGTERM) stops after the frame in progress and leaves a closed, readable bag of what was done.
Exit status: 0 done, 2 bad input or parameters (nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from hopadiff.bags import IMAGE_TYPES, NS, BagError, in_stamp_order, messages, open_bag

from ..core.intake import Throttle, shown
from ..core.settings import Settings
from .output import OutputBag, node_topics
from .replay import Replay, Result, Topics, choose_topics

EPILOG = """examples:
  rhas_bag robot_run --output robot_run_rhas -p checkpoint:=best.pt --text "the man in the red shirt"
  rhas_bag robot_run --output out --params-file my_robot.yaml -p detector:=external --start 30 --duration 60
see README.md (Bags) for recording a bag the node can replay and opening the output in Foxglove."""


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="rhas_bag", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("input", type=Path, help="rosbag2 folder (mcap or sqlite3) or .mcap file")
    ap.add_argument("--output", "-o", type=Path, required=True, help="the bag to write (a rosbag2 folder)")
    ap.add_argument("--params-file", type=Path, action="append", default=[], help="rhas_node parameters (YAML)")
    ap.add_argument("-p", dest="params", action="append", default=[], metavar="NAME:=VALUE",
                    help="one parameter, as after --ros-args (wins over the params files)")  # fmt: skip
    ap.add_argument("--text", default=None, help="referring text from the start (the recorded texts are ignored)")
    ap.add_argument("--start", type=float, default=0.0, help="seconds into the bag to start at")
    ap.add_argument("--duration", type=float, default=None, help="seconds of the bag to process")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument("--debug-images", action="store_true", help="also write rhas_node/debug_image")
    ap.add_argument("--reorder-window", type=float, default=1.0,
                    help="seconds within which messages are sorted by header stamp (default 1.0)")  # fmt: skip
    ap.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def read_parameters(files: list[Path], overrides: list[str]) -> tuple[Settings, list[str]]:
    """The parameters as rhas_node reads them: a throwaway rclpy node named rhas_node (so a params
    file's ``rhas_node:`` or ``/**:`` section applies) declares them with their descriptors, which
    checks types and ranges -> (settings, warnings for names rhas_node does not have)."""
    import rclpy
    from rclpy.node import Node

    from ..parameters import declare_parameters, read_settings, unknown_overrides

    for f in files:
        if not f.is_file():
            raise ValueError(f"params file {f} does not exist")
    cli = ["--ros-args"]
    for f in files:
        cli += ["--params-file", str(f)]
    for o in overrides:
        if ":=" not in o:
            raise ValueError(f"-p {o!r}: expected NAME:=VALUE")
        cli += ["-p", o]
    ctx = rclpy.Context()
    rclpy.init(args=[], context=ctx)
    try:
        node = Node("rhas_node", context=ctx, cli_args=cli, start_parameter_services=False, enable_rosout=False)
        try:
            declare_parameters(node)
            return read_settings(node), unknown_overrides(node)
        finally:
            node.destroy_node()
    except (rclpy.exceptions.ParameterException, rclpy.exceptions.InvalidParameterValueException,
            rclpy.exceptions.InvalidParameterTypeException) as e:  # fmt: skip
        raise ValueError(f"parameters: {e}") from None
    except rclpy._rclpy_pybind11.RCLError as e:  # a params file or -p rcl cannot parse
        raise ValueError(f"parameters: {str(e).splitlines()[0]}") from None
    finally:
        ctx.try_shutdown()


class Stop:
    """SIGINT / SIGTERM: finish the frame in progress, then stop (the bag is closed properly)."""

    def __init__(self):
        self.signal = None
        self._old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum, frame) -> None:
        self.signal = signum

    def __call__(self) -> bool:
        return self.signal is not None

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def summary(args, topics: Topics, r: Result, labels: list[str]) -> str:
    c = r.counts
    classes = collections.Counter(r.final_segments.values())
    seen = ", ".join(f"{label} ({n})" for label, n in classes.most_common()) or "none"
    skipped = c["frames_skipped_fps"] + c["stamp_repeated"] + c["bad_stamps"]
    lines = [
        f"rhas_bag: {args.input} -> {args.output} ({args.storage})" + ("  INTERRUPTED" if r.interrupted else ""),
        f"  frames      {c['frames_in']} read on {topics.image}, {c['frames_processed']} processed, "
        f"{skipped} not sampled (sample_fps, stamps), {c['decode_errors']} undecodable",
        f"  speed       {r.processed_fps:.2f} processed frames/s, {c['frames_in'] / max(r.wall_s, 1e-9):.1f} read "
        f"frames/s ({r.wall_s:.1f} s)",
        f"  persons     {len(r.track_ids)} tracked" + (f", referred: {sorted(r.target_ids)}" if r.target_ids else ""),
        f"  segments    {len(r.final_segments)} closed FINAL, {c['segment_msgs']} segment messages",
        f"  classes     {len(classes)} of {len(labels)} seen: {seen}",
    ]
    if r.texts or r.texts_ignored:
        lines.append(f"  texts       {len(r.texts)} applied: " + "; ".join(shown(t) for t in r.texts[:5])
                     + (f" ({r.texts_ignored} recorded texts ignored: --text)" if r.texts_ignored else ""))  # fmt: skip
    problems = {k: c[k] for k in ("stamp_went_backwards", "stamp_jumped_forward", "frames_without_persons",
                                  "persons_rejected", "decode_errors") if c[k]}  # fmt: skip
    if problems:
        lines.append("  problems    " + ", ".join(f"{k} {v}" for k, v in problems.items()))
    lines.append("  written     " + ", ".join(f"{t} {n}" for t, n in r.written.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def fail(message: str) -> int:
        print(f"rhas_bag: error: {message}", file=sys.stderr)
        return 2

    throttle = Throttle()

    def warn(message: str, key: str | None = None) -> None:
        if throttle.ready(key or message):
            tqdm.write(f"rhas_bag: warning: {message}", file=sys.stderr)

    def info(message: str) -> None:
        tqdm.write(f"rhas_bag: {message}", file=sys.stderr)

    if args.output.exists() and not args.overwrite:
        return fail(f"{args.output} exists: choose another --output or pass --overwrite")
    if args.output.resolve() == args.input.resolve():
        return fail("--output is the input bag")
    try:
        settings, unknown = read_parameters(args.params_file, args.params)
    except ValueError as e:
        return fail(str(e))
    for message in unknown:
        warn(message)
    from ..core.pipeline import RhasPipeline

    try:
        with open_bag(args.input) as reader:
            topics = choose_topics(reader, settings, args.input)
            start = reader.start_time + round(args.start * NS)
            stop_ns = None if args.duration is None else start + round(args.duration * NS)
            total = sum(c.msgcount for c in reader.connections if c.topic == topics.image and c.msgtype in IMAGE_TYPES)
            try:
                # Track and segment ids from 1, as in a node started for this recording: runs compare.
                pipeline = RhasPipeline.from_checkpoint(settings, warn, segment_ids=itertools.count(1))
            except Exception as e:  # every reason configure fails, named (as rhas_node's configure)
                return fail(f"configure failed: {e}")
            out = OutputBag(
                args.output,
                node_topics(settings, args.debug_images),
                args.storage,
                args.overwrite,
                custom_data={"rhas_bag.input": str(args.input), "rhas_bag.checkpoint": settings.checkpoint},
            )
            stop = Stop()
            bar = tqdm(total=total, unit="frame", desc="rhas_bag", disable=args.quiet, dynamic_ncols=True,
                       mininterval=1.0, file=sys.stderr)  # fmt: skip
            t0 = time.monotonic()

            def progress(n: int) -> None:
                bar.update(n)
                if bar.n % 25 == 0:
                    done = replay.counts["frames_processed"]
                    bar.set_postfix(processed=done, fps=f"{done / max(time.monotonic() - t0, 1e-9):.2f}", refresh=False)

            try:
                replay = Replay(pipeline, topics, out, warn, info)
                stream = replay.persons_first(messages(reader, args.input, topics.all, start, stop_ns))
                entries = in_stamp_order(stream, {topics.image}, args.reorder_window)
                result = replay.run(entries, args.text, stop, progress)
            except BaseException:
                out.abort()  # a bag that broke part way, or a bug: nothing half-written stays
                raise
            finally:
                bar.close()
                stop.restore()
            out.close()
    except (BagError, ValueError) as e:
        return fail(str(e))
    if not result.interrupted and args.start == 0 and args.duration is None and result.counts["frames_in"] < total:
        warn(f"{args.input}: its metadata counts {total} messages on {topics.image}, {result.counts['frames_in']} "
             "could be read (a damaged chunk?)")  # fmt: skip
    print(summary(args, topics, result, pipeline.labels))
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

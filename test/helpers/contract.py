"""The segment contract of rhas_msgs/ActionSegment, checked on a stream of published messages.

Messages are dicts as rhas_client.segment_dict() writes them: stamp, window [start, end], person_id and
segments [{id, rev, status, start, end, conf, ...}], in arrival order."""

from __future__ import annotations

from rhas_msgs.msg import ActionSegment

FINAL = ActionSegment.STATUS_FINAL


def contract_violations(messages: list[dict], sent_stamps=None) -> list[str]:
    """Every rule a consumer relies on; returns what is broken (empty: the stream keeps the contract).

    - the header stamp is the newest frame of the window (a sent camera stamp); every segment ends
      at or before it;
    - a segment id belongs to one person; revisions never go back;
    - FINAL is published exactly once per segment and nothing follows it;
    - every segment ever published ends FINAL (none left open)."""
    bad, person, last_rev, final, status = [], {}, {}, {}, {}
    sent = None if sent_stamps is None else set(sent_stamps)
    for i, m in enumerate(messages):
        if m["stamp"] != m["window"][1] or m["window"][0] > m["window"][1]:
            bad.append(f"message {i}: stamp {m['stamp']} is not the window end {m['window']}")
        if sent is not None and m["stamp"] not in sent:
            bad.append(f"message {i}: stamp {m['stamp']} is not a camera stamp that was sent")
        for s in m["segments"]:
            sid = s["id"]
            if s["end"] > m["stamp"] or s["start"] > s["end"]:
                bad.append(f"message {i}: segment {sid} [{s['start']}, {s['end']}] beyond stamp {m['stamp']}")
            if person.setdefault(sid, m["person_id"]) != m["person_id"]:
                bad.append(f"message {i}: segment {sid} moved from person {person[sid]} to {m['person_id']}")
            if sid in final:
                bad.append(f"message {i}: segment {sid} published again after FINAL (rev {s['rev']})")
            if s["rev"] < last_rev.get(sid, -1):
                bad.append(f"message {i}: segment {sid} revision went back {last_rev[sid]} -> {s['rev']}")
            last_rev[sid] = s["rev"]
            status[sid] = s["status"]
            if s["status"] == FINAL:
                final[sid] = s
    bad += [f"segment {sid} left ONGOING" for sid, st in status.items() if st != FINAL]
    return bad


def open_after(messages: list[dict], upto: int, person_ids=None) -> set[int]:
    """Segment ids still ONGOING after the first ``upto`` messages (optionally for some persons)."""
    status = {}
    for m in messages[:upto]:
        if person_ids is None or m["person_id"] in person_ids:
            for s in m["segments"]:
                status[s["id"]] = s["status"]
    return {sid for sid, st in status.items() if st != FINAL}


def as_messages(outputs) -> list[dict]:
    """rhas_ros.core.pipeline.PersonOutput list -> the message dicts above (header stamp = window end)."""
    return [
        {
            "stamp": o.window_end_ns,
            "window": [o.window_start_ns, o.window_end_ns],
            "person_id": o.person_id,
            "segments": [
                {
                    "id": s.segment_id,
                    "rev": s.revision,
                    "status": s.status,
                    "start": s.start_ns,
                    "end": s.end_ns,
                    "conf": s.confidence,
                    "class_id": s.class_id,
                }
                for s in o.segments
            ],
        }
        for o in outputs
    ]

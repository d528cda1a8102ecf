"""moviegpt.data.stream: a bad line in a streamed data file is one error line."""

import json

from conftest import one_error


def test_a_bad_line_in_a_streamed_jsonl_is_one_line(tmp_path, capfd):
    lines = [json.dumps({"id": i, "title": f"Film {i}", "overview": f"Story {i} of a long night."}) for i in range(300)]
    lines.insert(150, '{"id": 9999, "title": "Broken", "overview": ')
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    one_error(
        capfd,
        "while streaming",
        "train",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 's.jsonl'}",
        "--set",
        "data.streaming=true",
        "--set",
        "train.max_steps=2",
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
    )

"""The whole-image baseline (issue 17): one detection per image, the whole image, one constant score; scored by the
same AP code as the agent, and reported by every hierarchical and active testing run."""

import pytest

from zoomrl.envs.oracles import whole_image_records
from zoomrl.eval.detection import evaluate


def _record(image_id, width, height, boxes, difficult=()):
    return {
        "image_id": image_id,
        "width": width,
        "height": height,
        "searches": [{"triggered": True}],
        "ground_truth": [{"box": b, "difficult": i in difficult} for i, b in enumerate(boxes)],
    }


# Three images, in this order:
#  b: 100 x 100 with two objects, (0, 0, 40, 40) (IoU 0.16 with the whole image) and (50, 50, 100, 100) (0.25): a miss;
#  a: 200 x 100 with one object (0, 0, 150, 100): IoU 15000 / 20000 = 0.75, a hit;
#  c: 80 x 60 with no object: a false positive.
RECORDS = [
    _record("b", 100, 100, [[0, 0, 40, 40], [50, 50, 100, 100]]),
    _record("a", 200, 100, [[0, 0, 150, 100]]),
    _record("c", 80, 60, []),
]


def test_whole_image_ap_by_hand():
    whole = whole_image_records(RECORDS)
    assert [r["searches"][0]["box"] for r in whole] == [[0, 0, 100, 100], [0, 0, 200, 100], [0, 0, 80, 60]]
    assert all(len(r["searches"]) == 1 and r["windows_analysed"] == 1 for r in whole)
    res = evaluate(whole)
    # Equal scores keep record order: b (FP), a (TP), c (FP); 3 positives.
    # recall 0, 1/3, 1/3; precision 0, 1/2, 1/3.
    assert res["n_positives"] == 3 and res["n_detections"] == 3 and res["n_true_positives"] == 1
    assert res["precision"] == pytest.approx([0.0, 0.5, 1 / 3])
    # Area AP: the envelope at recall 1/3 is 1/2, so AP = 1/3 * 1/2.
    assert res["ap_area"] == pytest.approx(1 / 6)
    # VOC07: thresholds 0, 0.1, 0.2, 0.3 reach recall 1/3 with best precision 1/2; the other 7 get 0.
    assert res["ap_voc07"] == pytest.approx(4 * 0.5 / 11)
    assert res["recall_at_windows"]["1"] == pytest.approx(1 / 3)
    # The input records are not changed (they are the agent's).
    assert RECORDS[0]["searches"] == [{"triggered": True}]


def test_whole_image_score_is_one_constant():
    whole = whole_image_records(RECORDS, score=0.25)
    assert {r["searches"][0]["score"] for r in whole} == {0.25}

import numpy as np
import pytest

from zoomrl.core.geometry import box_to_voc, children, clip_boxes, iou, iou_matrix, pixel_window, voc_to_box


def test_children_overlapping_three_quarters_hand_computed():
    # Parent 0..400 x 0..200; children are 300 x 150.
    got = children((0, 0, 400, 200), 3 / 4)
    want = np.array(
        [
            [0, 0, 300, 150],  # top-left shares (0, 0)
            [100, 0, 400, 150],  # top-right shares (400, 0)
            [0, 50, 300, 200],  # bottom-left shares (0, 200)
            [100, 50, 400, 200],  # bottom-right shares (400, 200)
            [50, 25, 350, 175],  # centre shares (200, 100)
        ],
        dtype=float,
    )
    np.testing.assert_allclose(got, want)


def test_children_half_is_a_quadrant_split_on_a_non_square_offset_window():
    # Parent (10, 20)-(110, 80): 100 x 60. Quadrants are 50 x 30 and tile the parent exactly.
    got = children((10, 20, 110, 80), 1 / 2)
    want = np.array(
        [
            [10, 20, 60, 50],
            [60, 20, 110, 50],
            [10, 50, 60, 80],
            [60, 50, 110, 80],
            [35, 35, 85, 65],  # centre (60, 50), half-size 25 x 15
        ],
        dtype=float,
    )
    np.testing.assert_allclose(got, want)
    # four quadrants are pairwise disjoint and cover the parent
    quads = got[:4]
    inter = iou_matrix(quads, quads) - np.eye(4)
    assert np.all(inter == 0)
    assert np.isclose(((quads[:, 2] - quads[:, 0]) * (quads[:, 3] - quads[:, 1])).sum(), 100 * 60)


@pytest.mark.parametrize("scale", [0.3, 0.5, 0.6, 0.75, 0.9])
def test_children_any_scale_sizes_corners_and_centre(scale):
    parent = np.array([7.0, 3.0, 207.0, 123.0])
    kids = children(parent, scale)
    w, h = 200 * scale, 120 * scale
    np.testing.assert_allclose(kids[:, 2] - kids[:, 0], w)
    np.testing.assert_allclose(kids[:, 3] - kids[:, 1], h)
    np.testing.assert_allclose(kids[0, :2], parent[:2])
    np.testing.assert_allclose(kids[3, 2:], parent[2:])
    np.testing.assert_allclose((kids[4, :2] + kids[4, 2:]) / 2, (parent[:2] + parent[2:]) / 2)


def test_children_rejects_bad_scale():
    with pytest.raises(ValueError, match="received 1.0"):
        children((0, 0, 10, 10), 1.0)


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]], dtype=float)
    # a0-b1: inter 5x10=50, union 100+100-50=150 -> 1/3. a1-b0: inter 5x5=25, union 175 -> 1/7.
    # a1-b1: inter x 5..15 (10) * y 5..10 (5) = 50 -> 50/150. a0-b3: 25/100. a1-b3: 0.
    want = np.array([[1.0, 1 / 3, 0.0, 0.25], [1 / 7, 1 / 3, 0.0, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b), want)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_iou_degenerate_is_zero():
    assert iou((0, 0, 0, 10), (0, 0, 0, 10)) == 0.0


def test_voc_round_trip_and_clip():
    assert voc_to_box(1, 1, 10, 20) == (0.0, 0.0, 10.0, 20.0)
    assert box_to_voc((0.0, 0.0, 10.0, 20.0)) == (1, 1, 10, 20)
    np.testing.assert_allclose(clip_boxes([[-5, 2, 50, 80]], 40, 60), [[0, 2, 40, 60]])


def test_pixel_window_is_at_least_one_pixel_and_inside():
    assert pixel_window((3.4, 2.6, 3.45, 2.7), 10, 10) == (3, 3, 4, 4)
    assert pixel_window((-2, -2, 20, 20), 10, 8) == (0, 0, 10, 8)

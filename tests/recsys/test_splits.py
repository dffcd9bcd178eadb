"""Train/test splits: sizes, disjointness, shared id maps, seeding, folds."""
import numpy as np
import pytest

from fastnn.recsys import Ratings, leave_k_out, load_fold, random_split, validation_split
from fastnn.recsys.splits import unseen_in_train


def make(seed=0, n_users=30, n_items=20, nnz=300):
    rng = np.random.default_rng(seed)
    key = rng.choice(n_users * n_items, size=nnz, replace=False)
    return Ratings.from_triples(100 + key // n_items, 1000 + key % n_items,
                                rng.integers(1, 6, nnz), timestamps=rng.permutation(nnz),
                                rating_range=(1, 5))


def entries(r):
    u, i, v = r.to_triples()
    return {(int(a), int(b), float(c)) for a, b, c in zip(u, i, v)}


def check_partition(full, a, b):
    assert a.shape == b.shape == full.shape
    assert a.user_ids is full.user_ids and b.item_ids is full.item_ids
    ea, eb = entries(a), entries(b)
    assert not ea & eb and ea | eb == entries(full)
    assert a.matrix.has_sorted_indices and b.matrix.has_sorted_indices


def test_random_split():
    r = make()
    tr, te = random_split(r, 0.1, seed=3)
    check_partition(r, tr, te)
    assert te.nnz == 30
    tr2, te2 = random_split(r, 0.1, seed=3)
    assert entries(te2) == entries(te)
    assert entries(random_split(r, 0.1, seed=4)[1]) != entries(te)
    with pytest.raises(ValueError, match="test_frac"):
        random_split(r, 1.5)


@pytest.mark.parametrize("by", ["random", "time"])
@pytest.mark.parametrize("k", [1, 2])
def test_leave_k_out(by, k):
    r = make()
    tr, te = leave_k_out(r, k=k, by=by, seed=1)
    check_partition(r, tr, te)
    counts = np.diff(r.matrix.indptr)
    np.testing.assert_array_equal(np.diff(te.matrix.indptr), np.where(counts >= k + 1, k, 0))
    if by == "time":  # held-out ratings are each user's latest
        for u in range(r.n_users):
            ttr = tr.timestamps[tr.matrix.indptr[u]:tr.matrix.indptr[u + 1]]
            tte = te.timestamps[te.matrix.indptr[u]:te.matrix.indptr[u + 1]]
            if len(tte):
                assert ttr.max() < tte.min()


def test_leave_k_out_keeps_small_users_in_train():
    r = Ratings.from_triples([1, 1, 2], [1, 2, 1], [3, 4, 5], timestamps=[1, 2, 3])
    tr, te = leave_k_out(r, k=1, by="time")
    assert entries(te) == {(0, 1, 4.0)}
    with pytest.raises(ValueError, match="timestamps"):
        leave_k_out(Ratings.from_triples([1], [1], [3]), by="time")


def test_validation_split_carves_from_train():
    r = make()
    tr, te = random_split(r, 0.2, seed=0)
    fit, val = validation_split(tr, 0.25, seed=0)
    check_partition(tr, fit, val)
    assert not entries(val) & entries(te)
    fit, val = validation_split(tr, method="leave_k_out")
    check_partition(tr, fit, val)


def test_load_fold_shares_id_maps(tmp_path):
    (tmp_path / "u1.base").write_text("1\t10\t5\t1\n2\t10\t3\t2\n2\t20\t4\t3\n")
    (tmp_path / "u1.test").write_text("1\t20\t2\t4\n3\t30\t1\t5\n")  # user 3, item 30 unseen
    tr, te = load_fold(tmp_path / "u1.base", tmp_path / "u1.test")
    assert tr.shape == te.shape == (3, 3)
    np.testing.assert_array_equal(tr.user_ids, te.user_ids)
    np.testing.assert_array_equal(tr.item_ids, [10, 20, 30])
    assert te.matrix[te.user_index[3], te.item_index[30]] == 1
    assert tr.matrix[2].nnz == 0 and tr.matrix[:, 2].nnz == 0
    np.testing.assert_array_equal(unseen_in_train(tr, te), [False, True])

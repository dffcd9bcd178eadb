import numpy
import pytest

from fastnn import optimizers


def _reference_adam(p, g, m, v, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-7, wd=0.0, decoupled=False):
    if wd and not decoupled:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if wd and decoupled:
        p = p - lr * wd * p
    p = p - lr * (m / (1 - b1 ** t)) / (numpy.sqrt(v / (1 - b2 ** t)) + eps)
    return p, m, v


@pytest.mark.parametrize("cls,decoupled,wd", [(optimizers.Adam, False, 0.0),
                                               (optimizers.Adam, False, 0.1),
                                               (optimizers.AdamW, True, 0.1)])
def test_adam_matches_reference(cls, decoupled, wd, ops, rng):
    p = rng.standard_normal(7)
    opt = cls(learning_rate=0.01, weight_decay=wd)
    ref, m, v = p.copy(), numpy.zeros(7), numpy.zeros(7)
    for t in range(1, 5):
        g = rng.standard_normal(7)
        opt.apply_gradients([p], [g])
        ref, m, v = _reference_adam(ref, g, m, v, t, wd=wd, decoupled=decoupled)
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd(momentum, nesterov, ops, rng):
    p = rng.standard_normal(5)
    ref, vel = p.copy(), numpy.zeros(5)
    opt = optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov)
    for _ in range(3):
        g = rng.standard_normal(5)
        opt.apply_gradients([p], [g])
        vel = momentum * vel - 0.1 * g
        ref = ref + (momentum * vel - 0.1 * g if nesterov else vel)
    numpy.testing.assert_allclose(p, ref, rtol=1e-12)


def test_rmsprop_and_adagrad(ops, rng):
    p1, p2 = rng.standard_normal(4), rng.standard_normal(4)
    r1, r2, sq, acc = p1.copy(), p2.copy(), numpy.zeros(4), numpy.full(4, 0.1)
    o1, o2 = optimizers.RMSprop(0.01), optimizers.Adagrad(0.01)
    for _ in range(3):
        g = rng.standard_normal(4)
        o1.apply_gradients([p1], [g])
        o2.apply_gradients([p2], [g])
        sq = 0.9 * sq + 0.1 * g * g
        r1 -= 0.01 * g / (numpy.sqrt(sq) + 1e-7)
        acc += g * g
        r2 -= 0.01 * g / (numpy.sqrt(acc) + 1e-7)
    numpy.testing.assert_allclose(p1, r1, rtol=1e-12)
    numpy.testing.assert_allclose(p2, r2, rtol=1e-12)


def test_global_norm_and_value_clipping(ops):
    p, q = numpy.zeros(2), numpy.zeros(2)
    optimizers.SGD(1.0, global_clipnorm=1.0).apply_gradients([p, q], [numpy.array([3.0, 0]),
                                                                   numpy.array([0, 4.0])])
    numpy.testing.assert_allclose(numpy.concatenate([p, q]), [-0.6, 0, 0, -0.8])
    p = numpy.zeros(3)
    optimizers.SGD(1.0, clipvalue=0.5).apply_gradients([p], [numpy.array([-2.0, 0.1, 3.0])])
    numpy.testing.assert_allclose(p, [0.5, -0.1, -0.5])
    p = numpy.zeros(2)
    optimizers.SGD(1.0, clipnorm=1.0).apply_gradients([p], [numpy.array([3.0, 4.0])])
    numpy.testing.assert_allclose(p, [-0.6, -0.8])


def test_schedules():
    s = optimizers.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(20) == pytest.approx(0.025)
    assert optimizers.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    assert optimizers.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1])(7) == 0.5
    c = optimizers.CosineDecay(1.0, 100)
    assert c(0) == pytest.approx(1.0) and c(50) == pytest.approx(0.5) and c(100) == pytest.approx(0.0)
    assert optimizers.InverseTimeDecay(1.0, 1, 1.0)(3) == pytest.approx(0.25)
    opt = optimizers.SGD(learning_rate=s)
    p = numpy.zeros(1)
    for _ in range(10):
        opt.apply_gradients([p], [numpy.ones(1)])
    assert opt.current_learning_rate == pytest.approx(0.05)
    assert p[0] == pytest.approx(-sum(s(i) for i in range(10)))
    restored = optimizers.get({"class_name": "SGD", "config": opt.get_config()})
    assert restored.learning_rate(20) == pytest.approx(0.025)


def test_state_round_trip(rng):
    p = rng.standard_normal(6)
    opt = optimizers.Adam(0.01)
    opt.apply_gradients([p], [rng.standard_normal(6)])
    state = opt.get_state()
    q = p.copy()
    other = optimizers.Adam(0.01)
    other.set_state(state, [q])
    g = rng.standard_normal(6)
    opt.apply_gradients([p], [g])
    other.apply_gradients([q], [g])
    numpy.testing.assert_array_equal(p, q)


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid names are:.*adam"):
        optimizers.get("adamm")
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="2 parameters but 1 gradients"):
        optimizers.SGD().apply_gradients([numpy.zeros(1), numpy.zeros(1)], [numpy.zeros(1)])


def test_fused_step_interface_equals_apply_gradients(rng):
    """A fused step that updates the parameters itself, through the public
    built / slots / next_step, trains exactly as apply_gradients does, and
    both share one step count and one set of moments."""
    schedule = optimizers.ExponentialDecay(0.01, decay_steps=1, decay_rate=0.5)
    ref_opt, opt = optimizers.Adam(schedule), optimizers.Adam(schedule)
    p, q = rng.standard_normal(5), rng.standard_normal(5)
    q[...] = p
    assert not opt.built
    opt.build([q])
    assert opt.built
    for t in range(1, 5):
        g = rng.standard_normal(5)
        ref_opt.apply_gradients([p], [g])
        if t % 2:                                   # alternate the two paths
            lr, step = opt.next_step()
            assert (lr, step) == (0.01 * 0.5 ** (t - 1), t)   # the rate before the count
            s = opt.slots(0)
            expected, s["m"][...], s["v"][...] = _reference_adam(q, g, s["m"], s["v"], step,
                                                                 lr=lr)
            q[...] = expected
        else:
            opt.apply_gradients([q], [g])
        assert opt.iterations == ref_opt.iterations == t
    numpy.testing.assert_allclose(q, p, rtol=1e-12)
    numpy.testing.assert_allclose(opt.slots(0)["v"], ref_opt.slots(0)["v"], rtol=1e-12)


def test_slots_errors():
    opt = optimizers.Adam()
    with pytest.raises(RuntimeError, match="not built yet"):
        opt.slots(0)
    opt.build([numpy.zeros(3)])
    assert sorted(opt.slots(0)) == ["m", "v"]
    with pytest.raises(IndexError, match="built for 1 parameters"):
        opt.slots(1)

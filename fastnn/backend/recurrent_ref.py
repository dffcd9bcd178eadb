"""The reference (plain ``xp``) recurrent methods of the array-backend
contract (SimpleRNN, LSTM and GRU over a time-major sequence, forward and
backward), a mixin of ``Ops`` (ops.py). ``NumpyOps`` routes them to the
Cython kernels; a device backend overrides them.
"""


class RecurrentRefMixin:
    """``Ops``'s recurrent-layer methods, in ``self.xp``."""

    # -------------------------------------------------------- recurrent layers
    # Time-major sequences: a batch of N sequences of T steps is (T, N, ...).
    # ``cell`` is "simple" (SimpleRNN), "lstm" or "gru"; G, the gates per unit,
    # is 1, 4 or 3; gate order is Keras's (LSTM i, f, c, o; GRU z, r, h).
    RNN_GATES = {"simple": 1, "lstm": 4, "gru": 3}

    def rnn_forward(self, cell, xproj, R, h0, c0=None, mask=None, b_rec=None, rec_mask=None,
                    activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                    overwrite_xproj=False):
        """Run a recurrent cell over a whole sequence.

        ``xproj`` (T, N, G*U): every step's input projection ``x_t @ kernel +
        bias``, computed beforehand as one product. ``R`` (U, G*U): the
        recurrent kernel. ``h0`` (N, U) and, for the LSTM, ``c0`` (N, U): the
        initial state. ``mask`` (T, N) bool or None: at a masked step the state
        is kept and the output repeats the previous step's output (zeros before
        the first unmasked step), as Keras. ``b_rec`` (3U,): the GRU's
        recurrent bias when ``reset_after`` (else None). ``rec_mask``:
        recurrent dropout, multiplying ``h_{t-1}`` where it enters the
        recurrent product (only there: the GRU's final mix takes the state
        itself, as Keras), either one mask (N, U) for every gate or one per
        gate side by side (N, G*U) (Keras's: gate g's product reads
        ``h_{t-1} * rec_mask[:, g*U:(g+1)*U]``). A GRU with ``reset_after=False``
        resets the dropped-out ``h_{t-1}`` before the candidate's product
        (Keras's first form). ``overwrite_xproj``: the caller no longer needs
        ``xproj``, so a backend may compute in its memory.

        Returns ``(Y, hT, cT, cache)``: the outputs (N, T, U) (batch-major,
        as a layer returns them; the steps in the order read), the final
        state(s) (``cT`` None but for the LSTM) and what ``rnn_backward``
        needs (opaque: hand it back unchanged)."""
        xp = self.xp
        T, N = xproj.shape[:2]
        U = R.shape[0]
        G = self.RNN_GATES[cell]
        act, ract = activation, recurrent_activation
        af, rf = self.activation_forward, self.activation_forward
        if rec_mask is not None and G > 1 and rec_mask.shape[1] == U:
            rec_mask = xp.concatenate([rec_mask] * G, axis=1)   # one mask for every gate

        def dropped(h, g0, g1):
            """h_{t-1} as gates g0..g1-1 read it, side by side (N, (g1-g0)*U)."""
            hs = xp.concatenate([h] * (g1 - g0), axis=1) if g1 - g0 > 1 else h
            return hs if rec_mask is None else hs * rec_mask[:, g0 * U:g1 * U]

        def product(h, g0, g1):
            """The recurrent product of gates g0..g1-1, each through its mask."""
            if rec_mask is None:
                return h @ R[:, g0 * U:g1 * U]
            hd = dropped(h, g0, g1)
            return xp.concatenate([hd[:, (g - g0) * U:(g - g0 + 1) * U] @ R[:, g * U:(g + 1) * U]
                                   for g in range(g0, g1)], axis=1)

        h, c = h0, c0
        y = xp.zeros((N, U), dtype=xproj.dtype)
        Y = xp.empty((N, T, U), dtype=xproj.dtype)
        steps = []
        for t in range(T):
            z = xproj[t]
            keep = {"h_prev": h}
            if cell == "simple":
                h_new = af(act, z + product(h, 0, 1))
                keep["h_new"] = h_new
            elif cell == "lstm":
                a = z + product(h, 0, 4)
                i, f = rf(ract, a[:, :U]), rf(ract, a[:, U:2 * U])
                g, o = af(act, a[:, 2 * U:3 * U]), rf(ract, a[:, 3 * U:])
                c_new = f * c + i * g
                tc = af(act, c_new)
                h_new = o * tc
                keep.update(i=i, f=f, g=g, o=o, c_prev=c, tc=tc)
            elif reset_after:
                inner = product(h, 0, 3)
                if b_rec is not None:
                    inner = inner + b_rec
                zg = rf(ract, z[:, :U] + inner[:, :U])
                r = rf(ract, z[:, U:2 * U] + inner[:, U:2 * U])
                hh = af(act, z[:, 2 * U:] + r * inner[:, 2 * U:])
                h_new = zg * h + (1 - zg) * hh
                keep.update(z=zg, r=r, hh=hh, inner_h=inner[:, 2 * U:])
            else:
                zr = product(h, 0, 2)
                zg = rf(ract, z[:, :U] + zr[:, :U])
                r = rf(ract, z[:, U:2 * U] + zr[:, U:])
                hd_h = dropped(h, 2, 3)
                rh = r * hd_h
                hh = af(act, z[:, 2 * U:] + rh @ R[:, 2 * U:])
                h_new = zg * h + (1 - zg) * hh
                keep.update(z=zg, r=r, hh=hh, rh=rh, hd_h=hd_h)
            if mask is None:
                h, y = h_new, h_new
                if cell == "lstm":
                    c = c_new
            else:
                m = mask[t][:, None]
                h = xp.where(m, h_new, h)
                y = xp.where(m, h_new, y)
                if cell == "lstm":
                    c = xp.where(m, c_new, c)
            Y[:, t] = y
            steps.append(keep)
        cache = {"cell": cell, "steps": steps, "R": R, "mask": mask, "rec_mask": rec_mask,
                 "act": act, "ract": ract, "reset_after": reset_after, "U": U,
                 "shape": xproj.shape, "dtype": xproj.dtype}
        return Y, h, c, cache

    def rnn_backward(self, cache, dY, dhT=None, dcT=None, dR=None, db_rec=None):
        """Backpropagation through time for ``rnn_forward``'s ``cache``.

        ``dY`` (N, T, U): the gradient of the outputs; ``dhT``/``dcT`` (N, U)
        or None: of the final state(s). Accumulates ``dR += ...`` (skipped when
        None) and, for the GRU with ``reset_after``, ``db_rec += ...``.
        Returns ``(dxproj, dh0, dc0)``: the gradient of the input projection
        (T, N, G*U), from which the layer gets its kernel, bias and input
        gradients with one product each, and of the initial state(s)
        (``dc0`` None but for the LSTM)."""
        xp = self.xp
        cell, R, mask, rec_mask = cache["cell"], cache["R"], cache["mask"], cache["rec_mask"]
        act, ract, U = cache["act"], cache["ract"], cache["U"]
        T, N, GU = cache["shape"]
        dtype = cache["dtype"]
        ab = self.activation_backward

        def through_product(h, dout, g0, g1):
            """dR's blocks g0..g1-1 += (h_{t-1} as they read it)^T @ dout;
            returns the gradient reaching h_{t-1} through those products."""
            if rec_mask is None:
                if dR is not None:
                    dR[:, g0 * U:g1 * U] += h.T @ dout
                return dout @ R[:, g0 * U:g1 * U].T
            dh = None
            for g in range(g0, g1):
                m = rec_mask[:, g * U:(g + 1) * U]
                d = dout[:, (g - g0) * U:(g - g0 + 1) * U]
                if dR is not None:
                    dR[:, g * U:(g + 1) * U] += (h * m).T @ d
                part = (d @ R[:, g * U:(g + 1) * U].T) * m
                dh = part if dh is None else dh + part
            return dh

        dxproj = xp.empty((T, N, GU), dtype=dtype)
        dh = xp.zeros((N, U), dtype=dtype) if dhT is None else dhT
        dc = None
        if cell == "lstm":
            dc = xp.zeros((N, U), dtype=dtype) if dcT is None else dcT
        dy = xp.zeros((N, U), dtype=dtype)  # reaches the output of an earlier step
        for t in range(T - 1, -1, -1):
            s = cache["steps"][t]
            gy = dY[:, t] + dy
            if mask is None:
                dnew, dkeep, dy = dh + gy, None, xp.zeros_like(dy)
                dc_new, dc_keep = dc, None
            else:
                m = mask[t][:, None]
                dnew = xp.where(m, dh + gy, 0)
                dkeep = xp.where(m, 0, dh)
                dy = xp.where(m, 0, gy)
                if cell == "lstm":
                    dc_new, dc_keep = xp.where(m, dc, 0), xp.where(m, 0, dc)
            h = s["h_prev"]
            if cell == "simple":
                da = ab(act, s["h_new"], dnew)
                dxproj[t] = da
                dh = through_product(h, da, 0, 1)
            elif cell == "lstm":
                dc_new = dc_new + ab(act, s["tc"], dnew * s["o"])
                da = xp.concatenate([ab(ract, s["i"], dc_new * s["g"]),
                                     ab(ract, s["f"], dc_new * s["c_prev"]),
                                     ab(act, s["g"], dc_new * s["i"]),
                                     ab(ract, s["o"], dnew * s["tc"])], axis=1)
                dxproj[t] = da
                dh = through_product(h, da, 0, 4)
                dc = dc_new * s["f"]
                if dc_keep is not None:
                    dc = dc + dc_keep
            else:
                zg, r, hh = s["z"], s["r"], s["hh"]
                dzg = ab(ract, zg, dnew * (h - hh))
                dpre_h = ab(act, hh, dnew * (1 - zg))
                direct = dnew * zg   # through the final mix, which reads h_{t-1} itself
                if cache["reset_after"]:
                    dr = ab(ract, r, dpre_h * s["inner_h"])
                    dinner = xp.concatenate([dzg, dr, dpre_h * r], axis=1)
                    if db_rec is not None:
                        db_rec += dinner.sum(axis=0)
                    dh = direct + through_product(h, dinner, 0, 3)
                else:
                    if dR is not None:
                        dR[:, 2 * U:] += s["rh"].T @ dpre_h
                    drh = dpre_h @ R[:, 2 * U:].T
                    dr = ab(ract, r, drh * s["hd_h"])
                    d_hd = drh * r
                    if rec_mask is not None:
                        d_hd = d_hd * rec_mask[:, 2 * U:]
                    dh = direct + d_hd + through_product(h, xp.concatenate([dzg, dr], axis=1),
                                                         0, 2)
                dxproj[t] = xp.concatenate([dzg, dr, dpre_h], axis=1)
            if dkeep is not None:
                dh = dh + dkeep
        return dxproj, dh, dc

    def rnn_backward_input(self, cache, dY, x, W, dW=None, db_in=None, dhT=None, dcT=None,
                           dR=None, db_rec=None, need_dx=True):
        """``rnn_backward``, and the gradients of the input projection that
        made its ``xproj``, ``x @ W + b_in`` over the (T*N, F) rows ``x``:
        accumulates ``dW += x^T @ dxproj`` and ``db_in +=`` its column sums
        (each skipped when None). Returns ``(dx, dh0, dc0)``: the input's
        gradient ``dxproj @ W^T`` (T*N, F) (None unless ``need_dx``) and the
        initial states' as ``rnn_backward``. Here one product each after the
        sequence; a kernel backend may do them step by step."""
        dxproj, dh0, dc0 = self.rnn_backward(cache, dY, dhT, dcT, dR, db_rec)
        dz = dxproj.reshape(-1, dxproj.shape[-1])
        if dW is not None:
            dx = self.dense_backward(x, W, dz, dz, dW, db_in, "linear", need_dx=need_dx)
        else:
            if db_in is not None:
                db_in += dz.sum(axis=0)
            dx = self.gemm(dz, W, trans_b=True) if need_dx else None
        return dx, dh0, dc0

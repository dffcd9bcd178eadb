"""The reference (plain ``xp``) convolution, pooling and depthwise-convolution
methods of the array-backend contract, a mixin of ``Ops`` (ops.py): NHWC
images, the window arithmetic shared with fastnn/layers/conv_utils.py.
``NumpyOps`` routes them to the Cython kernels; a device backend overrides them.
"""


class ConvRefMixin:
    """``Ops``'s convolution, pooling and depthwise-convolution methods, in ``self.xp``."""

    # ------------------------------------------------------------ convolution
    # NHWC: x (N, H, W, C), W (kh, kw, C // groups, F), y (N, OH, OW, F);
    # ``strides`` (sh, sw), ``pads`` (top, bottom, left, right) zeros,
    # ``dilation`` (dh, dw); group g maps channels g*C/groups.. to filters
    # g*F/groups... A transposed convolution is these read backwards: its
    # forward is ``conv2d_input_grad``, its kernel gradient ``conv2d_backward``
    # with the roles of x and dy exchanged.
    @staticmethod
    def _conv2d_geometry(x_shape, W_shape, strides, pads, dilation):
        n, h, w, c = x_shape
        kh, kw, cg, f = W_shape
        (sh, sw), (pt, pb, pl, pr), (dh, dw) = strides, pads, dilation
        oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
        ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
        return oh, ow

    def _conv2d_windows(self, padded, W_shape, oh, ow, strides, dilation):
        """(i, j, the input pixels kernel tap (i, j) meets, (N, OH, OW, C) views)."""
        kh, kw = W_shape[:2]
        (sh, sw), (dh, dw) = strides, dilation
        for i in range(kh):
            for j in range(kw):
                yield i, j, padded[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                                   j * dw:j * dw + (ow - 1) * sw + 1:sw, :]

    def conv2d_forward(self, x, W, b, strides, pads, dilation=(1, 1), groups=1,
                       activation="linear", alpha=0.0):
        """``act(conv(x, W) + b)`` (cross-correlation, as Keras and PyTorch); ``b``
        may be None."""
        xp = self.xp
        n, h, w, c = x.shape
        kh, kw, cg, f = W.shape
        oh, ow = self._conv2d_geometry(x.shape, W.shape, strides, pads, dilation)
        pt, pb, pl, pr = pads
        padded = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        Wg = W.reshape(kh, kw, cg, groups, f // groups)
        z = xp.zeros((n, oh, ow, groups, f // groups), dtype=x.dtype)
        for i, j, win in self._conv2d_windows(padded, W.shape, oh, ow, strides, dilation):
            z += xp.einsum("nhwgc,cgf->nhwgf", win.reshape(n, oh, ow, groups, cg), Wg[i, j],
                           optimize=True)
        z = z.reshape(n, oh, ow, f)
        if b is not None:
            z += b
        if activation == "linear":
            return z
        return self.activation_forward(activation, z, alpha)

    def conv2d_input_grad(self, dz, W, x_shape, strides, pads, dilation=(1, 1), groups=1):
        """The gradient of ``conv(x, W)`` with respect to an ``x`` of ``x_shape``,
        given the output gradient ``dz`` (the forward of a transposed convolution)."""
        xp = self.xp
        n, h, w, c = x_shape
        kh, kw, cg, f = W.shape
        oh, ow = dz.shape[1:3]
        pt, pb, pl, pr = pads
        Wg = W.reshape(kh, kw, cg, groups, f // groups)
        dzg = dz.reshape(n, oh, ow, groups, f // groups)
        padded = xp.zeros((n, h + pt + pb, w + pl + pr, c), dtype=dz.dtype)
        for i, j, win in self._conv2d_windows(padded, W.shape, oh, ow, strides, dilation):
            win += xp.einsum("nhwgf,cgf->nhwgc", dzg, Wg[i, j], optimize=True).reshape(
                n, oh, ow, c)
        return padded[:, pt:pt + h, pl:pl + w, :]

    def conv2d_backward(self, x, W, y, dy, dW, db, strides, pads, dilation=(1, 1), groups=1,
                        activation="linear", alpha=0.0, need_dx=True):
        """With ``dz = dy * act'(y)``: accumulate ``dW +=`` the kernel gradient and
        ``db += dz.sum((0, 1, 2))`` (``dW`` or ``db`` may be None: not computed);
        return ``dx`` (None when ``need_dx`` is false). ``y`` may be None for a
        linear activation."""
        xp = self.xp
        dz = dy if activation == "linear" else self.activation_backward(activation, y, dy, alpha)
        n, oh, ow, f = dz.shape
        kh, kw, cg, _ = W.shape
        if db is not None:
            db += dz.sum(axis=(0, 1, 2))
        if dW is not None:
            pt, pb, pl, pr = pads
            padded = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
            dzg = dz.reshape(n, oh, ow, groups, f // groups)
            for i, j, win in self._conv2d_windows(padded, W.shape, oh, ow, strides, dilation):
                dW[i, j] += xp.einsum("nhwgc,nhwgf->cgf", win.reshape(n, oh, ow, groups, cg),
                                      dzg, optimize=True).reshape(cg, f)
        if not need_dx:
            return None
        return self.conv2d_input_grad(dz, W, x.shape, strides, pads, dilation, groups)

    # ------------------------------------- pooling and depthwise convolution
    # Images are NHWC (batch, rows, cols, channels); a layer given
    # channels_first transposes at its boundary. ``padding`` is "valid" or
    # "same" (Keras's rule, fastnn/layers/conv_utils.py); ``pool_size``,
    # ``strides``, ``dilation`` are pairs.
    @staticmethod
    def window_pads(hw, kernel, strides, padding, dilation=(1, 1)):
        """(top, bottom, left, right) zero padding of a window sliding over
        spatial sizes ``hw``."""
        from ..layers.conv_utils import same_pads
        if padding == "valid":
            return 0, 0, 0, 0
        top, bottom = same_pads(hw[0], kernel[0], strides[0], dilation[0])
        left, right = same_pads(hw[1], kernel[1], strides[1], dilation[1])
        return top, bottom, left, right

    def _windows(self, xp_padded, kernel, strides, out_hw, dilation=(1, 1)):
        """Yield ``(i, j, view)``: for each kernel offset, the (N, ho, wo, C)
        strided view of the padded input it meets (a loop over the kh*kw
        offsets, not over data)."""
        for i in range(kernel[0]):
            r0 = i * dilation[0]
            for j in range(kernel[1]):
                c0 = j * dilation[1]
                yield i, j, xp_padded[:, r0:r0 + strides[0] * (out_hw[0] - 1) + 1:strides[0],
                                      c0:c0 + strides[1] * (out_hw[1] - 1) + 1:strides[1], :]

    def _pool_geometry(self, shape, pool_size, strides, padding, dilation=(1, 1)):
        pads = self.window_pads(shape[1:3], pool_size, strides, padding, dilation)
        ek = [(k - 1) * d + 1 for k, d in zip(pool_size, dilation)]
        out_hw = ((shape[1] + pads[0] + pads[1] - ek[0]) // strides[0] + 1,
                  (shape[2] + pads[2] + pads[3] - ek[1]) // strides[1] + 1)
        return pads, out_hw

    def pool2d_forward(self, x, pool_size, strides, padding="valid", mode="max"):
        """Max (``mode="max"``) or average (``"avg"``) pooling of ``x`` (N, H, W,
        C) -> ``(y, argmax)``. Padded cells never win a max, and an average
        divides by the count of the window's real inputs (Keras). ``argmax``
        (int32, y's shape; None for average) is ``i * pool_w + j``, the
        position of the first maximum in row-major order inside its padded
        window: backward gives that element the gradient (TensorFlow's rule)."""
        xp = self.xp
        pads, out_hw = self._pool_geometry(x.shape, pool_size, strides, padding)
        width = ((0, 0), pads[:2], pads[2:], (0, 0))
        if mode == "max":
            fill = -xp.inf
            xpad = xp.pad(x, width, mode="constant", constant_values=fill)
            best = idx = None
            for i, j, v in self._windows(xpad, pool_size, strides, out_hw):
                k = i * pool_size[1] + j
                if best is None:
                    best, idx = v.copy(), xp.zeros(v.shape, dtype=xp.int32)
                else:
                    # A NaN wins (the first one), as numpy.max propagates it.
                    better = (v > best) | (xp.isnan(v) & ~xp.isnan(best))
                    best = xp.where(better, v, best)
                    idx = xp.where(better, xp.int32(k), idx)
            return best.astype(x.dtype, copy=False), idx.astype(xp.int32, copy=False)
        if mode != "avg":
            raise ValueError(f"pool2d_forward: mode must be 'max' or 'avg', got {mode!r}")
        xpad = xp.pad(x, width, mode="constant")
        ones = xp.pad(xp.ones((1,) + tuple(x.shape[1:3]) + (1,), dtype=xp.float64), width,
                      mode="constant")
        total = count = 0
        for (_, _, v), (_, _, c) in zip(self._windows(xpad, pool_size, strides, out_hw),
                                        self._windows(ones, pool_size, strides, out_hw)):
            total = total + v.astype(xp.float64)
            count = count + c
        return (total / count).astype(x.dtype), None

    def pool2d_backward(self, dy, argmax, x_shape, pool_size, strides, padding="valid",
                        mode="max"):
        """dx of ``pool2d_forward`` (``x_shape`` its input's shape): max sends
        each dy to its window's ``argmax``; average spreads it evenly over the
        window's real inputs. Overlapping windows sum."""
        xp = self.xp
        pads, out_hw = self._pool_geometry(x_shape, pool_size, strides, padding)
        padded = (x_shape[0], x_shape[1] + pads[0] + pads[1], x_shape[2] + pads[2] + pads[3],
                  x_shape[3])
        dpad = xp.zeros(padded, dtype=dy.dtype)
        if mode == "max":
            for i, j, v in self._windows(dpad, pool_size, strides, out_hw):
                v += xp.where(argmax == i * pool_size[1] + j, dy, dy.dtype.type(0))
        else:
            width = ((0, 0), pads[:2], pads[2:], (0, 0))
            ones = xp.pad(xp.ones((1,) + tuple(x_shape[1:3]) + (1,), dtype=dy.dtype), width,
                          mode="constant")
            count = 0
            for _, _, c in self._windows(ones, pool_size, strides, out_hw):
                count = count + c
            share = dy / count
            for _, _, v in self._windows(dpad, pool_size, strides, out_hw):
                v += share
        return dpad[:, pads[0]:pads[0] + x_shape[1], pads[2]:pads[2] + x_shape[2], :]

    def depthwise_conv2d_forward(self, x, kernel, bias, strides, padding="valid",
                                 dilation=(1, 1), activation="linear", alpha=0.0):
        """``act(depthwise(x) + bias)``: x (N, H, W, C), kernel (kh, kw, C, M),
        bias (C*M,) or None -> (N, ho, wo, C*M), output channel ``c*M + m``
        from input channel c (TensorFlow's order). Zero padding."""
        xp = self.xp
        kh, kw, C, M = kernel.shape
        pads, out_hw = self._pool_geometry(x.shape, (kh, kw), strides, padding, dilation)
        xpad = xp.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)), mode="constant")
        z = xp.zeros((x.shape[0],) + out_hw + (C, M), dtype=x.dtype)
        for i, j, v in self._windows(xpad, (kh, kw), strides, out_hw, dilation):
            z += v[..., None] * kernel[i, j]
        z = z.reshape(z.shape[:3] + (C * M,))
        if bias is not None:
            z += bias
        return z if activation == "linear" else self.activation_forward(activation, z, alpha)

    def depthwise_conv2d_backward(self, x, kernel, y, dy, dkernel, dbias, strides,
                                  padding="valid", dilation=(1, 1), activation="linear",
                                  alpha=0.0, need_dx=True):
        """With ``dz = dy * act'(y)``: accumulate ``dkernel += ...`` and ``dbias
        += dz.sum((0, 1, 2))`` (``dbias`` may be None); return dx (None unless
        ``need_dx``)."""
        xp = self.xp
        kh, kw, C, M = kernel.shape
        dz = dy if activation == "linear" else self.activation_backward(activation, y, dy, alpha)
        pads, out_hw = self._pool_geometry(x.shape, (kh, kw), strides, padding, dilation)
        xpad = xp.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)), mode="constant")
        dz5 = dz.reshape(dz.shape[:3] + (C, M))
        dpad = xp.zeros(xpad.shape, dtype=x.dtype) if need_dx else None
        for (i, j, v), (_, _, d) in zip(
                self._windows(xpad, (kh, kw), strides, out_hw, dilation),
                self._windows(dpad if need_dx else xpad, (kh, kw), strides, out_hw, dilation)):
            dkernel[i, j] += (v[..., None] * dz5).sum(axis=(0, 1, 2))
            if need_dx:
                d += (dz5 * kernel[i, j]).sum(axis=-1)
        if dbias is not None:
            dbias += dz.sum(axis=(0, 1, 2))
        if not need_dx:
            return None
        return dpad[:, pads[0]:pads[0] + x.shape[1], pads[2]:pads[2] + x.shape[2], :]

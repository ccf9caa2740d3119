"""rsmi.engine.session.kept_signal_stack: the thread gets back the alternate signal stack it had
(no OpenVINO needed: the block installs a stack of its own, as the plugin does)."""

from __future__ import annotations

import ctypes
import sys

import pytest

from rsmi.engine.session import _StackT, kept_signal_stack, signal_stack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sigaltstack")


def test_a_stack_installed_inside_the_block_is_replaced_by_the_previous_one():
    libc = ctypes.CDLL(None, use_errno=True)
    before = signal_stack()
    memory = ctypes.create_string_buffer(1 << 16)  # what a library would allocate and later free
    with kept_signal_stack():
        mine = _StackT(ctypes.cast(memory, ctypes.c_void_p), 0, len(memory))
        assert libc.sigaltstack(ctypes.byref(mine), None) == 0
        assert signal_stack()[0] == ctypes.addressof(memory)
    assert signal_stack() == before
    with pytest.raises(RuntimeError), kept_signal_stack():  # also when the block raises
        assert libc.sigaltstack(ctypes.byref(mine), None) == 0
        raise RuntimeError
    assert signal_stack() == before

"""Choosing MuJoCo's OpenGL backend for rendering without a display.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, so the choice is made before
that import: a value the user set is respected; otherwise each candidate (EGL, then OSMesa) is
probed in a short-lived subprocess (which creates and frees a tiny GL context, so no GL state is
ever created in this process before it is needed, and nothing is forked after). The winner is
written to ``os.environ["MUJOCO_GL"]``, which subprocess vector envs inherit, so they skip the
probe. When nothing works, :class:`GLBackendError` says what to install.

Use :func:`import_mujoco` instead of ``import mujoco`` anywhere a renderer may be made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["DEFAULT_CANDIDATES", "GLBackendError", "import_mujoco", "select_gl_backend"]

DEFAULT_CANDIDATES: tuple[str, ...] = ("egl", "osmesa")

#: What each backend needs on a Debian/Ubuntu machine.
INSTALL_HINTS: dict[str, str] = {
    "egl": "EGL: `apt-get install libegl1 libgl1 libgl1-mesa-dri` (Mesa's software EGL needs no "
    "GPU; with an NVIDIA GPU its driver's libEGL is used)",
    "osmesa": "OSMesa: `apt-get install libosmesa6`",
    "glfw": "GLFW: a display (X11/Wayland) and `pip install glfw`",
}

_PROBE_CODE = """
import mujoco
ctx = mujoco.GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string("<mujoco/>")
con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
con.free()
ctx.free()
print("spiral-gl-ok")
"""

_selected: str | None = None


class GLBackendError(RuntimeError):
    """No OpenGL backend can render MuJoCo scenes in this process."""


def install_message(tried: dict[str, str] | None = None) -> str:
    """The error text: what was tried, why it failed, and what to install."""
    lines = ["MuJoCo cannot render offscreen: no working OpenGL backend."]
    for backend, why in (tried or {}).items():
        lines.append(f"  MUJOCO_GL={backend}: {why}")
    lines.append("Install one of these and try again (or set MUJOCO_GL to a backend that works):")
    for backend in DEFAULT_CANDIDATES:
        lines.append(f"  {INSTALL_HINTS[backend]}")
    lines.append("PyOpenGL is needed too (`pip install PyOpenGL`, a dependency of mujoco).")
    return "\n".join(lines)


def probe_backend(backend: str, timeout: float = 120.0) -> tuple[bool, str]:
    """Tries ``backend`` in a subprocess: ``(works, why_not)``."""
    env = dict(os.environ, MUJOCO_GL=backend)
    if backend in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = backend
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"probe failed: {e}"
    if out.returncode == 0 and "spiral-gl-ok" in out.stdout:
        return True, ""
    tail = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
    return False, tail[-300:]


def select_gl_backend(
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    probe: Callable[[str], tuple[bool, str]] = probe_backend,
) -> str:
    """Chooses the OpenGL backend and exports it as ``MUJOCO_GL``.

    Args:
        candidates: Backends to try, in order, when ``MUJOCO_GL`` is not set.
        probe: ``backend -> (works, why_not)``; the default creates a GL context in a subprocess.

    Returns:
        The backend name (``MUJOCO_GL``'s value).

    Raises:
        GLBackendError: when ``MUJOCO_GL`` is unset and no candidate works; the message names the
            system packages to install.
    """
    global _selected
    user = os.environ.get("MUJOCO_GL", "").strip()
    if user:
        return user.lower()
    if _selected is not None and _selected in candidates:
        return _selected
    tried: dict[str, str] = {}
    for backend in candidates:
        ok, why = probe(backend)
        if ok:
            os.environ["MUJOCO_GL"] = backend
            _selected = backend
            return backend
        tried[backend] = why or "does not work here"
    raise GLBackendError(install_message(tried))


def import_mujoco() -> ModuleType:
    """Imports ``mujoco`` with a working offscreen backend selected first.

    Raises:
        GLBackendError: no backend works (see :func:`select_gl_backend`), or ``mujoco`` was already
            imported without ``MUJOCO_GL`` (so it chose GLFW, which needs a display).
        ImportError: ``mujoco`` is not installed.
    """
    already = "mujoco" in sys.modules
    if already and not os.environ.get("MUJOCO_GL"):
        mujoco = sys.modules["mujoco"]
        backend = select_gl_backend()
        _patch_imported_mujoco(backend)
        return mujoco
    select_gl_backend()
    try:
        import mujoco
    except RuntimeError as e:  # an invalid MUJOCO_GL value
        raise GLBackendError(
            install_message({os.environ.get("MUJOCO_GL", ""): str(e)})
            + "\nAccepted MUJOCO_GL values without a display: egl, osmesa."
        ) from e
    except ImportError as e:
        raise ImportError(
            "the 3D scene environments need MuJoCo: `pip install mujoco` (a core dependency of "
            "spiral-gym)"
        ) from e
    return mujoco


def _patch_imported_mujoco(backend: str) -> None:
    """Points an already imported mujoco (which defaulted to GLFW) at ``backend``."""
    try:
        from mujoco.rendering.classic import gl_context

        if getattr(gl_context, "_MUJOCO_GL", "") == backend:
            return
        if backend == "egl":
            from mujoco.egl import GLContext
        elif backend == "osmesa":
            from mujoco.osmesa import GLContext
        else:
            return
        gl_context.GLContext = GLContext
    except Exception as e:  # pragma: no cover - depends on import order in user code
        raise GLBackendError(
            f"mujoco was imported before MUJOCO_GL was set and cannot be switched to {backend}: "
            f"{e}. Set MUJOCO_GL={backend} in the environment (or import spiral_envs.scene "
            "first).\n" + install_message()
        ) from e


def renderer_error(e: BaseException) -> GLBackendError:
    """Wraps a failure to create a MuJoCo GL context in a :class:`GLBackendError`."""
    backend = os.environ.get("MUJOCO_GL", "")
    return GLBackendError(install_message({backend or "(unset)": f"{type(e).__name__}: {e}"}))

"""Choosing MuJoCo's OpenGL backend for rendering without a display.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, so the choice is made before
that import: a value the user set is respected; otherwise each candidate (EGL, then OSMesa) is
probed in a short-lived subprocess (which creates and frees a tiny GL context, so no GL state is
ever created in this process before it is needed, and nothing is forked after). The winner is
written to ``os.environ["MUJOCO_GL"]``, which subprocess vector envs inherit, so they skip the
probe. When nothing works, :class:`GLBackendError` says what to install.

``import spiral_envs`` exports ``MUJOCO_GL=egl`` as a default where that is safe (unset, no
display, ``mujoco`` not imported yet: :func:`set_default_backend`), so a library that imports
``mujoco`` afterwards gets an offscreen backend too. When ``mujoco`` was imported before
``MUJOCO_GL`` was set, it keeps GLFW for the whole process; the error then says that, and that
``export MUJOCO_GL=egl`` before Python starts is the cure.

Use :func:`import_mujoco` instead of ``import mujoco`` anywhere a renderer may be made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = [
    "DEFAULT_CANDIDATES",
    "GLBackendError",
    "import_mujoco",
    "select_gl_backend",
    "set_default_backend",
]

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
    ours = user == _default and "mujoco" not in sys.modules  # our default, still revisable
    if user and not (ours and _selected is None):
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

    When ``mujoco`` was already imported (by the program or another library) before
    ``MUJOCO_GL`` was set, it has fixed its backend (GLFW, which needs a display) for this process:
    the choice is still exported for worker processes, and a failure to render then raises a
    :class:`GLBackendError` that says so (see :func:`renderer_error`).

    Raises:
        GLBackendError: no backend works (see :func:`select_gl_backend`).
        ImportError: ``mujoco`` is not installed.
    """
    if "mujoco" in sys.modules:
        select_gl_backend()
        return sys.modules["mujoco"]
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


def mujoco_gl_at_import() -> str | None:
    """The ``MUJOCO_GL`` value ``mujoco`` read when it was imported (``None``: not imported)."""
    if "mujoco" not in sys.modules:
        return None
    module = sys.modules.get("mujoco.rendering.classic.gl_context")
    return getattr(module, "_MUJOCO_GL", None) if module is not None else None


def imported_first_message(seen: str, error: BaseException | None = None) -> str:
    """The error text for ``mujoco`` imported before ``MUJOCO_GL`` was (or could be) set."""
    wanted = os.environ.get("MUJOCO_GL", "").strip() or "egl"
    chose = (
        "saw MUJOCO_GL unset and chose GLFW, which needs a display"
        if not seen or seen == "glfw"
        else f"chose MUJOCO_GL={seen!r}"
    )
    lines = [
        "MuJoCo cannot render offscreen: `mujoco` was imported (by this program or a library it "
        f"imported, e.g. torchrl or dm_control) before MUJOCO_GL was set, so it {chose}. MuJoCo "
        "reads MUJOCO_GL only once, at its first import: setting it later has no effect in this "
        "process. This is not a missing system package.",
        f"Cure: `export MUJOCO_GL={wanted}` before Python starts (or set "
        f"os.environ['MUJOCO_GL'] = '{wanted}' before anything imports mujoco; importing "
        "spiral_envs first does that for you when there is no display).",
    ]
    if error is not None:
        lines.append(f"The error was: {type(error).__name__}: {error}")
    return "\n".join(lines)


#: The ``MUJOCO_GL`` value :func:`set_default_backend` exported (``None``: none).
_default: str | None = None


def set_default_backend() -> str | None:
    """Exports ``MUJOCO_GL=egl`` at ``import spiral_envs`` where that is safe, and says if it did.

    Safe means: ``MUJOCO_GL`` is unset, ``mujoco`` is not imported yet (so it will read it), and
    there is no display (``DISPLAY`` and ``WAYLAND_DISPLAY`` unset), so GLFW could not work
    anyway. A library that imports ``mujoco`` later in this process then gets an offscreen
    backend. Nothing is loaded or probed here; the first scene still probes, and if EGL does not
    work there and ``mujoco`` is still not imported, OSMesa is chosen instead.
    """
    global _default
    if os.environ.get("MUJOCO_GL", "").strip() or "mujoco" in sys.modules:
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    os.environ["MUJOCO_GL"] = _default = "egl"
    return _default


def renderer_error(e: BaseException) -> GLBackendError:
    """Wraps a failure to create a MuJoCo GL context in a :class:`GLBackendError`.

    When ``mujoco`` was imported before ``MUJOCO_GL`` was set (it read another value), the message
    says so and gives the cure, instead of listing packages to install.
    """
    seen = mujoco_gl_at_import()
    backend = os.environ.get("MUJOCO_GL", "")
    if seen is not None and seen != backend.strip().lower():
        return GLBackendError(imported_first_message(seen, e))
    return GLBackendError(install_message({backend or "(unset)": f"{type(e).__name__}: {e}"}))

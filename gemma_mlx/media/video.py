"""Short video as frames: mp4/mov/webm (PyAV), GIF (Pillow) or a folder; sampled evenly in time."""

from __future__ import annotations

import math
import re
import struct
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from ..errors import GemmaError
from .image_processing import MAX_PIXELS, load_image, to_rgb

FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
FOLDER_FPS = 1.0  # a folder of frames is read as one frame per second (frames taken at 1 fps)
_EPS = 1e-6


@dataclass(frozen=True)
class Video:
    """Sampled frames of one clip: `times` (seconds from its start) of the chosen frames,
    their indices in the clip, and the frames themselves once decoded (None before)."""

    path: Path
    kind: str  # "av", "gif" or "folder"
    duration: float
    total_frames: int
    times: tuple[float, ...]
    indices: tuple[int, ...]
    frames: tuple[Image.Image, ...] | None = None

    def labels(self) -> list[str]:
        return [frame_label(t) for t in self.times]


def frame_label(t: float) -> str:
    """"Frame at 00:03:" (mm:ss; h:mm:ss past an hour; tenths when not on a second)."""
    whole = math.floor(t + _EPS)
    frac = t - whole
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    stamp = f"{m:02d}:{s:02d}" if not h else f"{h:02d}:{m:02d}:{s:02d}"
    if frac > 0.005:
        stamp += f"{frac:.2f}"[1:].rstrip("0")
    return f"Frame at {stamp}:"


def sample_times(duration: float, fps: float = 1.0, max_frames: int = 8) -> list[float]:
    """Evenly spaced sample times in [0, duration): every 1/fps seconds, or, when that would
    be more than `max_frames`, `max_frames` times spread over the whole clip."""
    if fps <= 0 or max_frames < 1:
        raise GemmaError(f"--video-fps must be > 0 and --max-frames >= 1 (got {fps}, "
                         f"{max_frames})")
    step = max(1.0 / fps, duration / max_frames)
    n = max(1, min(max_frames, math.ceil(duration / step - _EPS)))
    return [i * step for i in range(n)]


def choose(starts: list[float], duration: float, fps: float, max_frames: int
           ) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The frame on screen at each sample time (starts: each frame's start, ascending);
    a frame picked twice (fps above the clip's) is kept once, at its first time."""
    times, indices = [], []
    for t in sample_times(duration, fps, max_frames):
        i = max(0, bisect_right(starts, starts[0] + t + _EPS) - 1)
        if not indices or indices[-1] != i:
            times.append(t)
            indices.append(i)
    return tuple(times), tuple(indices)


def load_video(path: str | Path, fps: float = 1.0, max_frames: int = 8,
               decode: bool = True) -> Video:
    """The sampled frames of a video file, GIF or folder of numbered frames.

    With decode=False only the timing is read (a demux for PyAV, no pixels), so the token
    budget can be checked first; `decode_video` then reads the chosen frames.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        video = _plan_folder(p, fps, max_frames)
    elif not p.exists():
        raise GemmaError(f"{p}: no such video file or folder")
    elif p.stat().st_size == 0:
        raise GemmaError(f"{p}: the video file is empty (0 bytes)")
    elif _is_gif(p):
        video = _plan_gif(p, fps, max_frames)
    else:
        video = _plan_av(p, fps, max_frames)
    return decode_video(video) if decode else video


def decode_video(video: Video) -> Video:
    """`video` with its chosen frames decoded (RGB PIL images)."""
    if video.frames is not None:
        return video
    read = {"folder": _decode_folder, "gif": _decode_gif, "av": _decode_av}[video.kind]
    frames = read(video)
    if len(frames) != len(video.indices):
        raise GemmaError(f"{video.path}: the video ends early: {len(frames)} of "
                         f"{len(video.indices)} sampled frames could be decoded; is the file "
                         "complete?")
    return replace(video, frames=tuple(frames))


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _folder_files(p: Path) -> list[Path]:
    files = [f for f in p.iterdir() if f.suffix.lower() in FRAME_SUFFIXES and f.is_file()]
    if not files:
        raise GemmaError(f"{p}: the folder has no frames ({', '.join(sorted(FRAME_SUFFIXES))})")
    return sorted(files, key=lambda f: _natural_key(f.name))


def _plan_folder(p: Path, fps: float, max_frames: int) -> Video:
    n = len(_folder_files(p))
    starts = [i / FOLDER_FPS for i in range(n)]
    times, indices = choose(starts, n / FOLDER_FPS, fps, max_frames)
    return Video(p, "folder", n / FOLDER_FPS, n, times, indices)


def _decode_folder(video: Video) -> list[Image.Image]:
    files = _folder_files(video.path)
    if len(files) != video.total_frames:
        raise GemmaError(f"{video.path}: the folder changed while it was read")
    return [load_image(files[i]) for i in video.indices]


def _is_gif(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(6) in (b"GIF87a", b"GIF89a")


def _open_gif(p: Path) -> Image.Image:
    img = Image.open(p)
    if img.width * img.height * getattr(img, "n_frames", 1) > 16 * MAX_PIXELS:
        raise GemmaError(f"{p}: {img.n_frames} frames of {img.width}x{img.height} is over the "
                         "limit for one GIF")
    return img


_GIF_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def _plan_gif(p: Path, fps: float, max_frames: int) -> Video:
    """Frame start times from each frame's duration; every frame is decoded once here, so a
    damaged one fails now (and a GIF must end with its trailer byte, or it was cut)."""
    with open(p, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) != b";":
            raise GemmaError(f"{p}: the GIF ends early (no trailer); is the file complete?")
    starts, t = [], 0.0
    try:
        with _open_gif(p) as img:
            for i in range(img.n_frames):
                img.seek(i)
                img.load()
                starts.append(t)
                ms = img.info.get("duration") or 0
                t += (ms if ms > 10 else 100) / 1000  # as browsers: 0-10 ms shows for 100 ms
    except _GIF_ERRORS as e:
        raise GemmaError(f"{p}: cannot decode the GIF ({e}); is the file complete?") from None
    times, indices = choose(starts, t, fps, max_frames)
    return Video(p, "gif", t, len(starts), times, indices)


def _decode_gif(video: Video) -> list[Image.Image]:
    frames = []
    try:
        with _open_gif(video.path) as img:
            for i in video.indices:
                img.seek(i)
                frames.append(to_rgb(img.copy()))
    except _GIF_ERRORS as e:
        raise GemmaError(f"{video.path}: cannot decode the GIF ({e}); is the file complete?"
                         ) from None
    return frames


def _av():
    try:
        import av
    except ImportError:
        raise GemmaError("video files need PyAV: pip install av") from None
    return av


def _open_av(p: Path):
    """The container and its first video stream, with PyAV's errors as one GemmaError."""
    av = _av()
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise GemmaError(f"{p}: not a video PyAV can read ({_reason(e)}); is the file "
                         "complete?") from None
    if not container.streams.video:
        container.close()
        raise GemmaError(f"{p}: the file has no video stream; is it complete?")
    return container, container.streams.video[0]


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _plan_av(p: Path, fps: float, max_frames: int) -> Video:
    av = _av()
    container, stream = _open_av(p)
    try:
        with container:
            packets = [(pk.pts, pk.duration or 0) for pk in container.demux(stream)
                       if pk.size and pk.pts is not None]
            declared, others = stream.frames, len(container.streams) - 1
            total = container.duration / 1e6 if container.duration else None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise GemmaError(f"{p}: cannot read the video ({_reason(e)}); is the file complete?"
                         ) from None
    if not packets:
        raise GemmaError(f"{p}: the video has no frames; is the file complete?")
    if stream.width * stream.height > MAX_PIXELS:
        raise GemmaError(f"{p}: {stream.width}x{stream.height} frames are over the "
                         f"{MAX_PIXELS // 1_000_000} MP limit for one image")
    packets.sort()
    tb = float(stream.time_base)
    starts = [(pts - packets[0][0]) * tb for pts, _ in packets]
    last = packets[-1][1] * tb or (starts[-1] / (len(starts) - 1) if len(starts) > 1 else 1.0)
    duration = starts[-1] + last
    short = declared and len(packets) < declared
    # a cut webm demuxes cleanly, only its header's duration tells (audio could be longer)
    if short or (not declared and not others and total and duration < total - max(0.5, 2 * last)):
        raise GemmaError(f"{p}: the video ends early ({len(packets)} frame(s), "
                         f"{duration:.1f} s of {total or 0:.1f} s); is the file complete?")
    times, indices = choose(starts, duration, fps, max_frames)
    return Video(p, "av", duration, len(packets), times, indices)


def _decode_av(video: Video) -> list[Image.Image]:
    """Decode in order, converting only the chosen frames (presentation order = index)."""
    av = _av()
    wanted, frames = set(video.indices), []
    container, stream = _open_av(video.path)
    stream.thread_type = "AUTO"
    try:
        with container:
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    frames.append(frame.to_image().convert("RGB"))
                if len(frames) == len(wanted):
                    break
    except (av.FFmpegError, OSError, ValueError) as e:
        raise GemmaError(f"{video.path}: cannot decode the video ({_reason(e)}); is the file "
                         "complete?") from None
    return frames

"""Video as timestamped frames: sampling, decoders (PyAV, Pillow, folders), prompt, budget, CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gemma_mlx.errors import GemmaError
from gemma_mlx.media import video as video_mod
from gemma_mlx.media.video import frame_label, load_video, sample_times
from gemma_mlx.prompt import (
    VIDEO_PLACEHOLDER,
    build_video_inputs,
    place_videos,
    with_video_markers,
)
from gemma_mlx.text.chat_template import render_chat

av = pytest.importorskip("av")


def gray(i: int) -> int:
    return (40 + 50 * i) % 256


def write_clip(path: Path, n: int, fps: int, size=(32, 24), codec: str = "libx264",
               faststart: bool = False) -> Path:
    """A tiny clip whose frame i is flat gray(i), so a decoded frame tells its index."""
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(n):
            a = np.full((size[1], size[0], 3), gray(i), np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_gif(path: Path, durations_ms: list[int]) -> Path:
    frames = [Image.new("RGB", (16, 12), (gray(i),) * 3) for i in range(len(durations_ms))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations_ms,
                   loop=0)
    return path


def index_of(frame: Image.Image) -> int:
    value = float(np.asarray(frame).mean())
    return int(np.argmin([abs(value - gray(i)) for i in range(5)]))


def test_sample_times_short_long_and_exact():
    assert sample_times(3.0) == [0.0, 1.0, 2.0]  # short: every second
    assert sample_times(0.4) == [0.0]  # shorter than a second: one frame
    assert sample_times(8.0) == [float(i) for i in range(8)]
    long = sample_times(100.0, fps=1, max_frames=8)  # long: 8 spread over the whole clip
    assert len(long) == 8 and long[1] == 12.5 and long[-1] == 87.5
    assert sample_times(2.0, fps=4, max_frames=8) == [i / 4 for i in range(8)]
    with pytest.raises(GemmaError):
        sample_times(1.0, fps=0)


def test_frame_labels():
    assert frame_label(3) == "Frame at 00:03:"
    assert frame_label(61) == "Frame at 01:01:"
    assert frame_label(12.5) == "Frame at 00:12.5:"
    assert frame_label(3723) == "Frame at 01:02:03:"


@pytest.mark.parametrize("name,codec", [("a.mp4", "libx264"), ("a.mov", "libx264"),
                                        ("a.webm", "libvpx-vp9")])
def test_container_sampling_picks_the_frame_on_screen(tmp_path, name, codec):
    clip = write_clip(tmp_path / name, n=10, fps=5, codec=codec)  # 2 s
    v = load_video(clip)
    assert (v.duration, v.total_frames, v.times, v.indices) == (2.0, 10, (0.0, 1.0), (0, 5))
    assert [index_of(f) % 5 for f in v.frames] == [0, 0]  # frames 0 and 5: same gray mod 5
    assert v.frames[0].size == (32, 24) and v.frames[0].mode == "RGB"


def test_fps_above_the_clips_takes_each_frame_once(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", n=5, fps=2)  # 2.5 s, frames every 0.5 s
    v = load_video(clip, fps=10, max_frames=30)
    assert v.indices == (0, 1, 2, 3, 4)
    assert v.times == pytest.approx((0.0, 0.5, 1.0, 1.5, 2.0))
    assert [index_of(f) for f in v.frames] == [0, 1, 2, 3, 4]


def test_long_clip_is_spread_evenly(tmp_path):
    clip = write_clip(tmp_path / "long.mp4", n=40, fps=2)  # 20 s
    v = load_video(clip, fps=1, max_frames=4, decode=False)
    assert v.frames is None and v.times == (0.0, 5.0, 10.0, 15.0)
    assert v.indices == (0, 10, 20, 30)


def test_gif_frame_durations(tmp_path):
    gif = write_gif(tmp_path / "a.gif", [500, 500, 1000, 0])  # 0 ms shows for 100 ms
    v = load_video(gif)
    assert v.duration == pytest.approx(2.1) and v.indices == (0, 2, 3)
    assert [index_of(f) for f in v.frames] == [0, 2, 3]


def test_folder_sorted_numerically(tmp_path):
    for i, n in enumerate([1, 2, 10]):
        Image.new("RGB", (8, 8), (gray(i),) * 3).save(tmp_path / f"frame_{n}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    v = load_video(tmp_path, fps=1, max_frames=8)
    assert v.times == (0.0, 1.0, 2.0)
    assert [index_of(f) for f in v.frames] == [0, 1, 2]  # frame_10 last, not second


def _cut(src: Path, dst: Path, keep: int) -> Path:
    dst.write_bytes(src.read_bytes()[:keep])
    return dst


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_mp4_is_one_clear_error(tmp_path, faststart):
    clip = write_clip(tmp_path / "full.mp4", n=10, fps=5, faststart=faststart)
    size = clip.stat().st_size
    for keep in (60, size // 2, size - 200):
        bad = _cut(clip, tmp_path / f"cut{keep}.mp4", keep)
        with pytest.raises(GemmaError, match=re.escape(str(bad)) + ".*complete"):
            load_video(bad)


def test_unreadable_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mov"
    text.write_text("hello, not a video")
    gif = write_gif(tmp_path / "g.gif", [100] * 4)
    cut_gif = _cut(gif, tmp_path / "cut.gif", gif.stat().st_size // 2)
    (tmp_path / "nothing").mkdir()
    cases = {empty: "empty", text: "not a video", cut_gif: "GIF ends early",
             tmp_path / "nothing": "no frames", tmp_path / "missing.mp4": "no such video"}
    for path, why in cases.items():
        with pytest.raises(GemmaError, match=re.escape(str(path)) + ".*" + why):
            load_video(path)


class CharTokenizer:
    """Special tokens and "\\n\\n" one id each, other characters one each: exact counts."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        pieces = re.findall(r"<[a-z_]+>|\n\n|.", text, flags=re.S)
        return ([2] if add_special_tokens else []) + [hash(p) % 1000 for p in pieces]


def test_prompt_layout_text_and_chat(tmp_path):
    clip = load_video(write_clip(tmp_path / "c.mp4", n=10, fps=5), decode=False)
    text, order = place_videos(f"<bos>A<start_of_image>B{VIDEO_PLACEHOLDER}C", 1, [clip])
    assert text == ("<bos>A<start_of_image>BFrame at 00:00:<start_of_image>"
                    "Frame at 00:01:<start_of_image>C")
    assert order == [0, (0, 0), (0, 1)]
    text, order = place_videos("<bos>Describe.", 1, [clip])  # no markers: video, image first
    assert text.startswith("<bos>Frame at 00:00:<start_of_image>Frame at 00:01:"
                           "<start_of_image><start_of_image>Describe.")
    assert order == [(0, 0), (0, 1), 0]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Hi"}]}]
    chat = render_chat(with_video_markers(messages))
    assert chat == f"<bos><start_of_turn>user\n{VIDEO_PLACEHOLDER}Hi<end_of_turn>\n" \
                   "<start_of_turn>model\n"
    with pytest.raises(GemmaError, match="2 <video> marker"):
        place_videos(f"<bos>{VIDEO_PLACEHOLDER}{VIDEO_PLACEHOLDER}", 0, [clip])


def test_video_inputs_pixels_in_prompt_order(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", n=10, fps=5)
    img = tmp_path / "white.png"
    Image.new("RGB", (20, 20), (255, 255, 255)).save(img)
    ids, pixels = build_video_inputs(CharTokenizer(), "Look<start_of_image><video>now", [img],
                                     [clip], image_size=28, tokens_per_image=4, context=1000)
    assert pixels.shape == (3, 3, 28, 28)
    assert pixels[0].min() == 1.0 and pixels[1].max() < 0  # the image, then dark frame 0
    text = "Look" + "\n\n<start_of_image>" + "<image_soft_token>" * 4 + "<end_of_image>\n\n"
    assert len(ids) > len(CharTokenizer().encode(text))


def test_budget_is_checked_before_any_frame_is_decoded(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", n=20, fps=5)  # 4 s
    monkeypatch.setattr("gemma_mlx.prompt.decode_video",
                        lambda v: pytest.fail("decoded before the budget check"))
    with pytest.raises(GemmaError) as e:
        build_video_inputs(CharTokenizer(), "Describe.", [], [clip], image_size=28,
                           tokens_per_image=256, context=600, fps=1, max_frames=8)
    # 4 frames x (256 + 4 markers + 15 label characters) + <bos> and the text
    assert str(e.value) == ("the prompt needs 1,110 tokens (4 video frame(s) x ~275 tokens + "
                            "10 other), over this model's context of 600; at most 2 frame(s) "
                            "fit: lower --max-frames or --video-fps")


def test_missing_pyav_is_a_clear_error(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", n=2, fps=1)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(GemmaError, match="pip install av"):
        video_mod.load_video(clip)


@pytest.fixture(scope="module")
def demo():
    from gemma_mlx.formats.default_model import ensure_vision_demo_model
    from gemma_mlx.formats.loading import load

    return load(ensure_vision_demo_model(progress=False))


@pytest.mark.slow
def test_stream_generate_with_videos(demo, tmp_path):
    from gemma_mlx.generation.generate import stream_generate

    clip = write_clip(tmp_path / "c.mp4", n=6, fps=2)  # 3 s
    model, tok = demo
    messages = [{"role": "user", "content": [{"type": "video"},
                                             {"type": "text", "text": "What happens?"}]}]
    out = list(stream_generate(model, tok, messages, videos=[clip], max_frames=2, max_tokens=2))
    text = tok.apply_chat_template(with_video_markers(messages), tokenize=False)
    again = list(stream_generate(model, tok, text, videos=[load_video(clip, max_frames=2)],
                                 max_tokens=2))
    assert [r.token for r in out] == [r.token for r in again]
    assert out[-1].prompt_tokens > 2 * 260
    with pytest.raises(GemmaError, match="over this model's context"):
        _too_many_frames(model, tok, tmp_path)


def _too_many_frames(model, tok, tmp_path: Path) -> None:
    from gemma_mlx.generation.generate import stream_generate

    folder = tmp_path / "frames"
    folder.mkdir()
    context = model.config.max_position_embeddings
    for i in range(context // 260 + 2):
        Image.new("RGB", (4, 4)).save(folder / f"{i}.png")
    model.encode_images = lambda px: pytest.fail("encoded before the budget check")
    try:
        list(stream_generate(model, tok, "x", videos=[folder], max_frames=10_000, max_tokens=1))
    finally:
        del model.encode_images


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gemma_mlx.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_video_generate_and_chat_end_to_end(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", n=6, fps=2)
    gif = write_gif(tmp_path / "a.gif", [1000] * 3)
    r = _cli("generate", "--model", "vision-demo", "--video", str(clip), "--video", str(gif),
             "--max-frames", "1", "--prompt", "Compare the clips.", "--max-tokens", "2")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split("Prompt: ")[1].split()[0]) > 2 * 260
    bad = _cut(clip, tmp_path / "cut.mp4", clip.stat().st_size // 2)
    r = _cli("generate", "--model", "vision-demo", "--video", str(bad), "--max-tokens", "2")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"gemma-mlx: error: {bad}: " in r.stderr and "==========" not in r.stdout
    chat = _cli("chat", "--model", "vision-demo", "--max-tokens", "2", "--max-frames", "2",
                "--temp", "0",
                stdin=f"/video {clip}\nWhat happens?\n/video {bad}\nAnd now?\n")
    assert chat.returncode == 0, chat.stderr
    assert "[video 1 attached to your next message as 2 frames, 00:00 to 00:01.5]" in chat.stdout
    assert f"error: {bad}: " in chat.stdout and "Traceback" not in chat.stderr

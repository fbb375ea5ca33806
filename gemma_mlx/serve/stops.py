"""Stop strings: cut the streamed text where one appears, holding back what could start one."""

from __future__ import annotations


class StopMatcher:
    """Feed text pieces; get back what is safe to send, and whether a stop string matched
    (the text before it is sent, the stop string and everything after are not)."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.held = ""
        self.hold = max((len(s) for s in self.stops), default=1) - 1

    def add(self, piece: str) -> tuple[str, bool]:
        if not self.stops:
            return piece, False
        text = self.held + piece
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self.held = ""
            return text[: min(cuts)], True
        keep = len(text)
        for n in range(min(self.hold, len(text)), 0, -1):  # a tail that may begin a stop
            if any(s.startswith(text[-n:]) for s in self.stops):
                keep = len(text) - n
                break
        self.held = text[keep:]
        return text[:keep], False

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out

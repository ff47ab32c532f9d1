"""A linear-chain conditional random field over per-token emission scores, shaped like
pytorch-crf's `CRF(num_tags, batch_first=True)`:

    crf(emissions, tags, mask)   log-likelihood of the tag sequences, summed over the batch
    crf.decode(emissions, mask)  the best tag sequence of each row (Viterbi)

score(y) = start[y_1] + sum_t emissions[t, y_t] + sum_t transitions[y_(t-1), y_t] + end[y_T],
and log Z sums exp(score) over every tag sequence with the forward algorithm, so the
log-likelihood is score(y) - log Z. `constraints` (from `bio_constraints`) forbids
transitions outright (a sentence cannot start with I-PER; I-PER only follows B-PER or
I-PER): those scores are fixed at -10,000, never learned.
"""

from __future__ import annotations

import torch
import torch.nn as nn

IMPOSSIBLE = -1e4  # exp() of it is 0 in float32, without the NaNs -inf would bring into gradients


def bio_constraints(tags: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(start (K,), transitions (K, K), end (K,)) boolean masks of what BIO tagging allows:
    no sentence starts with I-X, and I-X follows only B-X or I-X. Every tag may end one."""
    k = len(tags)
    start = torch.ones(k, dtype=torch.bool)
    transitions = torch.ones(k, k, dtype=torch.bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = False
            kind = tag[2:]
            for i, previous in enumerate(tags):
                transitions[i, j] = previous in (f"B-{kind}", f"I-{kind}")
    return start, transitions, torch.ones(k, dtype=torch.bool)


class CRF(nn.Module):
    def __init__(self, num_tags: int, constraints: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))  # [from, to]
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        allowed = constraints or tuple(torch.ones(s, dtype=torch.bool) for s in ((num_tags,), (num_tags, num_tags), (num_tags,)))
        # Buffers: saved with the weights, so a served model keeps its constraints.
        for name, mask in zip(("start_penalty", "transition_penalty", "end_penalty"), allowed):
            self.register_buffer(name, torch.where(mask, 0.0, IMPOSSIBLE))

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed log-likelihood of `tags` (B, T) given `emissions` (B, T, K); `mask` (B, T)
        marks real tokens, each row's first token real."""
        return (self._score(emissions, tags, mask) - self._log_partition(emissions, mask)).sum()

    def log_likelihoods(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) log-likelihood of each row."""
        return self._score(emissions, tags, mask) - self._log_partition(emissions, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The highest-scoring tag sequence of each row, as long as its real tokens."""
        start, transitions, end = self._scores()
        emissions = emissions.float()
        score = start + emissions[:, 0]  # (B, K) best score of a path ending in each tag
        pointers = []
        for t in range(1, emissions.shape[1]):
            # (B, K from, 1) + (K from, K to) -> best previous tag for each tag
            best, previous = (score.unsqueeze(2) + transitions).max(dim=1)  # (B, K)
            step = mask[:, t].unsqueeze(1)  # (B, 1)
            score = torch.where(step, best + emissions[:, t], score)
            pointers.append(torch.where(step, previous, torch.arange(self.num_tags, device=score.device)))
        last = (score + end).argmax(dim=1)  # (B,)
        paths = [last]
        for previous in reversed(pointers):  # a padded step points each tag at itself
            last = previous.gather(1, last.unsqueeze(1)).squeeze(1)
            paths.append(last)
        tags = torch.stack(paths[::-1], dim=1)  # (B, T)
        lengths = mask.sum(dim=1).tolist()
        return [row[:n] for row, n in zip(tags.tolist(), lengths)]

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.start + self.start_penalty, self.transitions + self.transition_penalty,
                self.end + self.end_penalty)

    def _score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._scores()
        emissions, m = emissions.float(), mask.float()
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        score = start[tags[:, 0]] + (emitted * m).sum(dim=1)
        score = score + (transitions[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(dim=1)
        last = tags.gather(1, (mask.sum(dim=1) - 1).unsqueeze(1)).squeeze(1)  # (B,) each row's last real tag
        return score + end[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._scores()
        emissions = emissions.float()
        alpha = start + emissions[:, 0]  # (B, K) log-sum of every path ending in each tag
        for t in range(1, emissions.shape[1]):
            # (B, K from, 1) + (K, K) + (B, 1, K to), summed over the previous tag
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)  # (B,)

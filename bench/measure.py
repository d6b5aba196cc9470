"""What every benchmark records beside an accuracy: this process's peak memory, and the seconds
spent so far against the accuracy reached after each propagation round."""

from __future__ import annotations

import resource


def peak_gib() -> float:
    """This process's peak resident memory so far, in GiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def time_to_accuracy(rounds: list) -> list:
    """(seconds spent so far, accuracy of the result so far) after round 0 and after each round: a
    dropped round costs its time and leaves the accuracy where it was."""
    spent, accuracy, table = 0.0, None, []
    for r in rounds:
        spent += r["seconds"]
        if r["accepted"]:
            accuracy = r["accuracy_unlabelled"]
        table.append({"after_round": r["round"], "seconds": round(spent, 1), "accuracy_unlabelled": accuracy})
    return table

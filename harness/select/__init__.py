"""Pick real reconstructions among candidates without the training set (algorithms.md section 4).

    from harness.select import select_candidates, score_selection, lowest_loss_order
    sel = select_candidates(result.candidates, result.run_ids, run_losses)
    print(score_selection(result.candidates[sel.rep_index], members, threshold).precision)
"""

from harness.select.cluster import Selection, select_candidates
from harness.select.score import TopK, lowest_loss_order, score_selection

__all__ = ["Selection", "TopK", "lowest_loss_order", "score_selection", "select_candidates"]

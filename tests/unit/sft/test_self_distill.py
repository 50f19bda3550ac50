"""Self-distillation's answer cleaning: refusals and empty answers dropped, cut-off answers trimmed."""

from camelid.sft.distill import clean_answer


def test_a_whole_answer_is_kept_as_it_is():
    assert clean_answer("The capital of Australia is Canberra.") == ("The capital of Australia is Canberra.", "kept")


def test_a_refusal_or_an_empty_answer_is_dropped():
    assert clean_answer("I'm sorry, but I can't help with that.") == (None, "refusal")
    assert clean_answer("   ") == (None, "empty")


def test_an_answer_cut_by_the_token_limit_keeps_its_whole_sentences():
    text, how = clean_answer("Photosynthesis turns light into sugar in plants. It happens in the chlorop")
    assert (text, how) == ("Photosynthesis turns light into sugar in plants.", "trimmed")
    text, how = clean_answer("1. **Be yourself.** Authenticity matters in an interview.\n\n2. **Be prepared.** The in")
    assert text.endswith("Authenticity matters in an interview.") and how == "trimmed"
    assert clean_answer("Here's how:\n\n1. Open the") == (None, "cut")  # no whole sentence to keep


def test_a_repeated_sentence_ends_the_answer():
    text, how = clean_answer("Rest is important for recovery after a run. Drink water afterwards. "
                             "Rest is important for recovery after a run. Drink")
    assert text == "Rest is important for recovery after a run. Drink water afterwards." and how == "repeated"

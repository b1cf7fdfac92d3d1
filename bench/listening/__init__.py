"""Listening tests from a run, ratings back into the run, and metric-human agreement.

The loop: ``bench listen RUN_DIR`` picks test items from the run (``design``), writes a blind,
self-contained HTML page with loudness-matched audio (``page``) and keeps the key (which opaque
stimulus is which system) in ``RUN_DIR/listening/<test_id>/test.json``; raters export their ratings
from the page as JSON; ``bench ratings import`` validates and stores them (``ratings``);
``screening`` removes unreliable raters (CrowdMOS or ITU-R BS.1534-3 post-screening);
``agreement`` computes per-system scores with bootstrap intervals and the rank correlation of every
metric with the ratings; ``section`` renders that as the report's "Listening test" section;
``simulate`` writes synthetic ratings that follow a metric, to try the loop without people.

Run-directory layout::

    RUN/listening/<test_id>/test.json      the key: items, stimuli -> (system, prompt, seed, kind)
    RUN/listening/<test_id>/ratings.json   imported exports and the screening rules
    RUN/listening/<test_id>/page/          the default page folder (index.html + audio/)
"""

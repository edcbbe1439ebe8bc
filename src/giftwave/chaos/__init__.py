"""``giftwave chaos``: a workload of real accounts on several nodes while their parts fail,
then a check from the database that nothing acknowledged was lost, doubled or invented.

    processes.py  the nodes (real ``giftwave serve``), a private Redis, PostgreSQL's restart
    workload.py   the clients: each operation and its outcome (ok, refused, unknown) journaled
    checker.py    the proof, from the database and the viewers' screens
    campaign.py   the schedule of faults and the summary
"""

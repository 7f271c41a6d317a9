"""The local Kafka the project runs and tests on."""
from deskstream.localkafka import cluster_id


def test_a_cluster_id_never_looks_like_an_option():
    ids = [cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids) and len(set(ids)) == len(ids)

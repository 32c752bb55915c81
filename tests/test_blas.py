"""BLAS thread limits (threadpoolctl) around the LETKF kernel and at command start-up."""
import subprocess
import sys

from threadpoolctl import threadpool_info

from genenkf_hpc import blas


def blas_threads():
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_limited_sets_and_restores():
    before = blas_threads()
    with blas.limited(1):
        assert blas_threads() == {1}
    assert blas_threads() == before


def test_ranks_sharing_a_node_get_one_blas_thread_each(tmp_path):
    """Two local ranks on this machine's cores: the CLI leaves each a fair share."""
    code = ("import sys; from genenkf_hpc import cli; from threadpoolctl import threadpool_info;"
            "cli.main(['bench', 'letkf', '--nx', '16', '--members', '4', '--repeat', '1']);"
            "print(sorted({l['num_threads'] for l in threadpool_info() "
            "if l['user_api'] == 'blas'}))")
    env = {"OMPI_COMM_WORLD_LOCAL_SIZE": "64", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[1]"

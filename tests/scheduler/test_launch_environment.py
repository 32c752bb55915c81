"""What the rendered launch lines rely on: the processes they start find their rank, local rank
and world size (genenkf_hpc/parallel/environment.py), with the variables each launcher sets."""
from genenkf_hpc.parallel.environment import read_environment


def test_srun_with_pmix_is_an_mpi_launch():
    # `srun --mpi=pmix` (MpiDefault=pmix): PMIX_RANK but no PMIX_SIZE, plus Slurm's variables.
    env = read_environment({"PMIX_RANK": "3", "PMIX_NAMESPACE": "slurm.pmix.7.0",
                            "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"})
    assert (env.rank, env.local_rank, env.world_size, env.under_mpi) == (3, 1, 4, True)


def test_srun_without_mpi_is_a_ddp_launch():
    env = read_environment({"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8",
                            "SLURM_STEP_ID": "0"})
    assert (env.launcher, env.rank, env.local_rank, env.world_size) == ("slurm", 5, 1, 8)
    assert not env.under_mpi


def test_torchrun_under_srun_wins():
    env = read_environment({"RANK": "6", "LOCAL_RANK": "2", "WORLD_SIZE": "8", "PMIX_RANK": "1",
                            "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_NTASKS": "2"})
    assert (env.launcher, env.rank, env.local_rank, env.world_size) == ("torchrun", 6, 2, 8)


def test_pbs_mpiexec_open_mpi():
    env = read_environment({"PBS_JOBID": "1.srv", "OMPI_COMM_WORLD_RANK": "1",
                            "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"})
    assert (env.launcher, env.rank, env.world_size, env.under_mpi) == ("openmpi", 1, 2, True)


def test_single_task_step_is_serial():
    env = read_environment({"PMIX_RANK": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                            "SLURM_NTASKS": "1"})
    assert env.world_size == 1 and env.launcher == "single"


def test_batch_script_itself_is_one_process():
    # `sbatch -n 8` runs its script once with the allocation's SLURM_NTASKS; only srun steps
    # (SLURM_STEP_ID set) are parallel launches, so `genenkf train` there must not wait for 7
    # peers that never start.
    env = read_environment({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "8",
                            "SLURM_JOB_ID": "42"})
    assert (env.launcher, env.world_size) == ("single", 1)

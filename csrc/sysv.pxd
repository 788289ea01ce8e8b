# Declarations of the System V IPC interface, one block per system header,
# in the style of Cython's own posix/*.pxd.

from posix.types cimport pid_t, uid_t, gid_t, mode_t, time_t
from libc.stdint cimport uint16_t, uint32_t, uint64_t


cdef extern from "<sys/types.h>" nogil:
    ctypedef int key_t


cdef extern from "<sys/ipc.h>" nogil:
    struct ipc_perm:
        uid_t uid
        gid_t gid
        uid_t cuid
        gid_t cgid
        mode_t mode

    enum:
        IPC_PRIVATE
        IPC_CREAT
        IPC_EXCL
        IPC_NOWAIT
        IPC_RMID
        IPC_SET
        IPC_STAT
        IPC_INFO

    key_t ftok(const char *pathname, int proj_id)


cdef extern from "<sys/shm.h>" nogil:
    struct shmid_ds:
        ipc_perm shm_perm
        size_t shm_segsz
        time_t shm_atime
        time_t shm_dtime
        time_t shm_ctime
        pid_t shm_cpid
        pid_t shm_lpid
        unsigned long shm_nattch

    struct shminfo:
        unsigned long shmmax
        unsigned long shmmin
        unsigned long shmmni
        unsigned long shmseg
        unsigned long shmall

    struct shm_info:
        int used_ids
        unsigned long shm_tot
        unsigned long shm_rss
        unsigned long shm_swp
        unsigned long swap_attempts
        unsigned long swap_successes

    enum:
        SHM_RDONLY
        SHM_RND
        SHM_REMAP
        SHM_EXEC
        SHM_LOCK
        SHM_UNLOCK
        SHM_STAT
        SHM_INFO
        SHM_DEST
        SHM_LOCKED
        SHM_HUGETLB

    int shmget(key_t key, size_t size, int shmflg)
    void *shmat(int shmid, const void *shmaddr, int shmflg)
    int shmdt(const void *shmaddr)
    int shmctl(int shmid, int cmd, shmid_ds *buf)


cdef extern from "<sys/msg.h>" nogil:
    struct msqid_ds:
        ipc_perm msg_perm
        time_t msg_stime
        time_t msg_rtime
        time_t msg_ctime
        unsigned long msg_cbytes
        unsigned long msg_qnum
        unsigned long msg_qbytes
        pid_t msg_lspid
        pid_t msg_lrpid

    struct msginfo:
        int msgpool
        int msgmap
        int msgmax
        int msgmnb
        int msgmni
        int msgssz
        int msgtql
        unsigned short msgseg

    enum:
        MSG_NOERROR
        MSG_EXCEPT
        MSG_STAT
        MSG_INFO

    int msgget(key_t key, int msgflg)
    int msgsnd(int msqid, const void *msgp, size_t msgsz, int msgflg)
    ssize_t msgrcv(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)
    int msgctl(int msqid, int cmd, msqid_ds *buf)


cdef extern from "<sys/sem.h>" nogil:
    struct semid_ds:
        ipc_perm sem_perm
        time_t sem_otime
        time_t sem_ctime
        unsigned long sem_nsems

    struct seminfo:
        int semmap
        int semmni
        int semmns
        int semmnu
        int semmsl
        int semopm
        int semume
        int semusz
        int semvmx
        int semaem

    struct sembuf:
        unsigned short sem_num
        short sem_op
        short sem_flg

    enum:
        SEM_UNDO
        GETPID
        GETVAL
        GETALL
        GETNCNT
        GETZCNT
        SETVAL
        SETALL
        SEM_STAT
        SEM_INFO

    int semget(key_t key, int nsems, int semflg)
    int semop(int semid, sembuf *sops, size_t nsops)
    int semtimedop(int semid, sembuf *sops, size_t nsops, const timespec *timeout)
    int semctl(int semid, int semnum, int cmd, ...)


cdef extern from "<time.h>" nogil:
    struct timespec:
        time_t tv_sec
        long tv_nsec


cdef extern from "compat.h" nogil:
    union sysvkit_semun:
        int val
        semid_ds *buf
        unsigned short *array
        seminfo *__buf

    enum:
        SHM_STAT_ANY
        MSG_STAT_ANY
        SEM_STAT_ANY
        MSG_COPY
        SHM_NORESERVE
        SEMVMX

    ctypedef struct sysvkit_timer:
        pass

    key_t sysvkit_perm_key(ipc_perm perm)
    double sysvkit_monotonic()
    void sysvkit_to_timespec(double seconds, timespec *ts)
    int sysvkit_timer_start(sysvkit_timer *t, double deadline)
    void sysvkit_timer_stop(sysvkit_timer *t)


cdef extern from "structs.h" nogil:
    # The common header of structures in segments (Mutex, Channel, SharedArray).
    enum:
        SVK_MAGIC
        SVK_HEADER_SIZE
        SVK_KIND_MUTEX
        SVK_KIND_CHANNEL
        SVK_KIND_ARRAY
        SVK_KIND_TEST
        SVK_STATE_FRESH
        SVK_STATE_INIT
        SVK_STATE_READY

    ctypedef struct svk_header:
        uint32_t magic
        uint16_t kind
        uint16_t version
        uint64_t state
        uint64_t size

    uint64_t svk_state_load(const svk_header *h)
    int svk_state_cas(svk_header *h, uint64_t expected, uint64_t desired)
    int svk_publish(svk_header *h, uint64_t mine, uint16_t kind, uint16_t version, uint64_t size)


cdef extern from "robust.h" nogil:
    # Futex words and robust, process-shared mutexes whose waits a signal interrupts.
    ctypedef struct pthread_mutex_t:
        pass

    int pthread_mutex_trylock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_mutex_consistent(pthread_mutex_t *m)

    int svk_futex_wait(uint32_t *word, uint32_t expected, const timespec *deadline)
    int svk_futex_wake(uint32_t *word, int n)
    int svk_robust_init(pthread_mutex_t *m)
    int svk_robust_lock(pthread_mutex_t *m, const timespec *deadline)
    void svk_deadline(timespec *ts, double seconds)


cdef extern from "mutex.h" nogil:
    # sysvkit.Mutex's segment layout and checks.
    enum:
        SVK_MUTEX_VERSION
        FUTEX_TID_MASK

    ctypedef struct svk_mutex:
        pthread_mutex_t m

    int svk_mutex_kind()
    int svk_mutex_sane(const svk_mutex *mx)
    uint32_t svk_mutex_word(svk_mutex *mx)
    void svk_mutex_set_word(svk_mutex *mx, uint32_t v)
    int svk_mutex_reap(svk_mutex *mx)
    int svk_gettid()


cdef extern from "array.h" nogil:
    # The layout of a SharedArray's segment after the common header.
    enum:
        SVK_ARRAY_VERSION
        SVK_ARRAY_MAX_NDIM
        SVK_ARRAY_MAX_DESCR
        SVK_ARRAY_ALIGN
        SVK_ARRAY_SHAPE_OFFSET

    ctypedef struct svk_array_header:
        uint32_t ndim
        uint32_t descr_len
        uint64_t itemsize
        uint64_t nbytes
        uint64_t data_offset


cdef extern from "channel.h" nogil:
    # Channel: a ring of byte messages in a segment (layout written down there).
    enum:
        SVK_CHANNEL_VERSION
        SVK_CHAN_RECORD_HEADER
        SVK_CHAN_MIN_RING
        SVK_CHAN_MAX_MESSAGE
        SVK_CHAN_RING_OFFSET

    ctypedef union svk_chan_mutex:
        pthread_mutex_t m

    ctypedef struct svk_channel:
        uint64_t capacity
        uint64_t ring_size
        uint64_t ring_offset
        uint32_t removed
        svk_chan_mutex send_lock
        uint64_t tail
        uint64_t sent
        svk_chan_mutex recv_lock
        uint64_t head
        uint64_t received
        uint32_t data_word
        uint32_t space_word

    ctypedef struct svk_chan_snap:
        pass

    uint64_t svk_chan_record_size(uint64_t n)
    int svk_chan_expected_kind()
    int svk_chan_init(svk_channel *c, uint64_t capacity, uint64_t ring_size)
    int svk_chan_kind_ok(svk_chan_mutex *m, int kind)
    void svk_chan_snapshot(svk_chan_mutex *m, svk_chan_snap *s)
    void svk_chan_unlock(svk_chan_mutex *m, const svk_chan_snap *s)
    uint32_t svk_chan_owner(svk_chan_mutex *m)
    void svk_chan_wake(uint32_t *word)
    void svk_chan_wake_all(uint32_t *word)
    uint32_t svk_chan_announce(uint32_t *word)
    void svk_chan_mark_removed(svk_channel *c)
    int svk_chan_removed(svk_channel *c)
    uint64_t svk_chan_load(const uint64_t *p)
    int svk_chan_span_ok(uint64_t head, uint64_t tail, uint64_t rsize)
    void svk_chan_publish_send(svk_channel *c, uint64_t tail, uint64_t count)
    void svk_chan_publish_receive(svk_channel *c, uint64_t head, uint64_t count)
    void svk_chan_repair_send(svk_channel *c)
    void svk_chan_repair_receive(svk_channel *c)
    void svk_chan_copy_in(char *ring, uint64_t rsize, uint64_t off, const char *src, uint64_t n)
    void svk_chan_copy_out(const char *ring, uint64_t rsize, uint64_t off, char *dst, uint64_t n)
    uint64_t svk_chan_put_header(char *ring, uint64_t rsize, uint64_t pos, uint32_t n)
    int svk_chan_get_header(const char *ring, uint64_t rsize, uint64_t head, uint64_t tail,
                            uint32_t *n, uint64_t *payload)
    int svk_chan_thread_exists(uint32_t tid)
    int svk_chan_spin(svk_channel *c, int for_data, uint64_t rec, uint64_t rsize, long ns)

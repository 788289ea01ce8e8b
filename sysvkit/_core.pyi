"""Type stub for sysvkit._core, the compiled System V IPC wrappers."""

import os
from typing import Any, Optional, Sequence, Tuple, Union

from typing_extensions import Buffer, disjoint_base

_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

IPC_PRIVATE: int
IPC_CREAT: int
IPC_EXCL: int
IPC_NOWAIT: int
IPC_RMID: int
IPC_SET: int
IPC_STAT: int
IPC_INFO: int
SHM_RDONLY: int
SHM_RND: int
SHM_EXEC: int
SHM_LOCK: int
SHM_UNLOCK: int
SHM_STAT: int
SHM_STAT_ANY: int
SHM_INFO: int
SHM_DEST: int
SHM_LOCKED: int
SHM_HUGETLB: int
SHM_NORESERVE: int
MSG_NOERROR: int
MSG_EXCEPT: int
MSG_COPY: int
MSG_STAT: int
MSG_STAT_ANY: int
MSG_INFO: int
SEM_UNDO: int
GETPID: int
GETVAL: int
GETALL: int
GETNCNT: int
GETZCNT: int
SETVAL: int
SETALL: int
SEM_STAT: int
SEM_STAT_ANY: int
SEM_INFO: int
SEMVMX: int

class RemovedError(FileNotFoundError): ...

def ftok(path: _Path, proj_id: int) -> int: ...
def monotonic() -> float: ...

def shmget(key: int, size: int, flags: int) -> int: ...
def shmat(shmid: int, flags: int = 0) -> Attachment: ...
def shmdt(attachment: Attachment) -> None: ...
def shmctl(shmid: int, cmd: int, arg: Optional[Tuple[int, ...]] = None) -> Any: ...

@disjoint_base
class Attachment:
    @property
    def shmid(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def address(self) -> int: ...
    @property
    def exports(self) -> int: ...
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def __len__(self) -> int: ...
    def detach(self) -> None: ...
    def read(self, size: int = -1, offset: int = 0) -> bytes: ...
    def write(self, data: Buffer, offset: int = 0) -> int: ...

def msgget(key: int, flags: int) -> int: ...
def msgsnd(msqid: int, data: Buffer, mtype: int, flags: int = 0, *,
           timeout: Optional[float] = None) -> None: ...
def msgrcv(msqid: int, maxsize: int, mtype: int = 0, flags: int = 0, *,
           timeout: Optional[float] = None) -> Tuple[bytes, int]: ...
def msgctl(msqid: int, cmd: int, arg: Optional[Tuple[int, ...]] = None) -> Any: ...

@disjoint_base
class MessageQueueBase:
    _id: int
    _msgmax: int
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def send(self, data: Buffer, type: int = 1, *, block: bool = True,
             timeout: Optional[float] = None) -> None: ...
    def receive(self, type: int = 0, *, block: bool = True, timeout: Optional[float] = None,
                except_type: bool = False, max_size: Optional[int] = None,
                truncate: bool = False) -> Tuple[bytes, int]: ...

def semget(key: int, nsems: int, flags: int) -> int: ...
def semop(semid: int, ops: Sequence[Tuple[int, int, int]], *,
          timeout: Optional[float] = None) -> None: ...
def semctl(semid: int, semnum: int, cmd: int, arg: Any = None) -> Any: ...

def bench_c_msg_pair(msqid: int, size: int, n: int) -> float: ...
def bench_c_sem_pair(semid: int, n: int, flags: int = 0) -> float: ...

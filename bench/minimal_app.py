"""The minimal app the generated project is compared with: the same authenticated GET, written the obvious way.

An HS256 JWT dependency with PyJWT, an `async with sessionmaker()` generator
dependency, a cache, a pydantic response: what a FastAPI tutorial would write
for `GET /api/v1/users/{user_id}`. Served by bench/request_path.py from the
generated project's folder and venv (the same libraries at the same versions).

MINIMAL_CACHE picks the cache: `memory` (a dict), `redis` (redis-py `GET`,
`SET` on a miss), or `none` (the query on every request).
"""

import os
from datetime import datetime
from typing import Annotated, Any

import jwt
import redis.asyncio as redis
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SECRET = os.environ["JWT_SECRET_KEY"]
ISSUER = os.environ["MINIMAL_ISSUER"]
CACHE = os.environ.get("MINIMAL_CACHE", "memory")

engine = create_async_engine(os.environ["DATABASE_URL"])
sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
store = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")) if CACHE == "redis" else None
memory: dict[int, "UserOut"] = {}
app = FastAPI()
bearer = HTTPBearer()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    bio: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    bio: str | None
    status: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


async def current_user(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> dict[str, Any]:
    try:
        return jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"], audience=ISSUER, issuer=ISSUER)
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token") from None


async def get_session():  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        yield session


@app.get("/api/v1/users/{user_id}")
async def get_user(
    user_id: int,
    session: Annotated[AsyncSession, Depends(get_session)],
    _user: Annotated[dict[str, Any], Depends(current_user)],
) -> UserOut:
    if CACHE == "memory" and user_id in memory:
        return memory[user_id]
    if store is not None and (hit := await store.get(f"users:{user_id}")) is not None:
        return UserOut.model_validate_json(hit)
    row = await session.get(User, user_id)
    if row is None:
        raise HTTPException(404, "not found")
    found = UserOut.model_validate(row)
    if CACHE == "memory":
        memory[user_id] = found
    elif store is not None:
        await store.set(f"users:{user_id}", found.model_dump_json(), ex=300)
    return found

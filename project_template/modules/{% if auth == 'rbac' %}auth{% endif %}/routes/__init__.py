"""The router of the auth module, mounted under /api/v1/auth."""

from fastapi import APIRouter

from modules.auth.routes import admin, login

router = APIRouter(tags=["auth"])
router.include_router(login.router)
router.include_router(admin.router)

__all__ = ["router"]

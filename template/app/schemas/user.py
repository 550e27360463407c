from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.schemas.fields import Email, Name


class UserCreate(BaseModel):
    email: Email
    name: Name


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    created_at: datetime

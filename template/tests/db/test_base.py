from app.db.base import Base


def constraint_names(table_name: str) -> set[str]:
    table = Base.metadata.tables[table_name]
    names = {str(constraint.name) for constraint in table.constraints}
    return names | {str(index.name) for index in table.indexes}


def test_constraints_follow_the_naming_convention() -> None:
    assert constraint_names("users") == {"pk_users", "uq_users_email"}
    assert constraint_names("posts") == {
        "pk_posts",
        "fk_posts_author_id_users",
        "ix_posts_author_id",
    }

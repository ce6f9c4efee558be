/**
 * A typedoc plugin (loaded by typedoc.json) that warns about every top-level export
 * of the public entry points whose doc comment has no example: no `@example` tag and
 * no fenced code block. With `treatWarningsAsErrors`, `npm run docs` then fails on
 * it as it fails on a missing doc comment, so "every public export has a doc comment
 * with an example" is checked by the one docs build (and test/docs/api-docs.test.ts).
 *
 * Why a plugin: typedoc's own `notDocumented` validation checks that a comment
 * exists, not what it holds. Members (methods, properties) need a comment but no
 * example; a top-level export is what a reader lands on, so it shows how it is used.
 *
 * Example of what it reports:
 * ```
 * [warning] txnwal.openDatabase (Function) has a doc comment without an example: add a fenced ```ts block or an @example tag
 * ```
 *
 * It is plain JavaScript because typedoc imports plugins with Node's own loader.
 */
import { Application, ReflectionKind } from 'typedoc';

/** True when `comment` holds an `@example` tag or a fenced code block. */
function hasExample(comment) {
  if (!comment) return false;
  if (comment.blockTags.some((tag) => tag.tag === '@example')) return true;
  const parts = [...comment.summary, ...comment.blockTags.flatMap((tag) => tag.content)];
  return parts.some((part) => part.kind === 'code' && part.text.startsWith('```'));
}

/** The comment readers see for `reflection`: its own, or its first signature's (functions). */
function commentOf(reflection) {
  return reflection.comment ?? reflection.signatures?.[0]?.comment;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.on(Application.EVENT_VALIDATE_PROJECT, (project) => {
    // Several entry points are modules of the project; a single one is the project itself.
    const exports = (project.children ?? []).flatMap((child) =>
      child.kindOf(ReflectionKind.Module) ? (child.children ?? []) : [child],
    );
    for (const reflection of exports) {
      // A re-export of something documented elsewhere in the project.
      if (reflection.kindOf(ReflectionKind.Reference)) continue;
      const comment = commentOf(reflection);
      // A missing comment is typedoc's own notDocumented warning already.
      if (!comment || hasExample(comment)) continue;
      app.logger.warn(
        `${reflection.getFriendlyFullName()} (${ReflectionKind[reflection.kind]}) has a doc comment without an example: ` +
          'add a fenced ```ts block or an @example tag',
      );
    }
  });
}
